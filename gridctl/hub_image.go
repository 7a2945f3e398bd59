package gridctl

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	hubclient "github.com/grid4/grid4/hub/client"
	"github.com/grid4/grid4/oci"
)

// pushImageView is the JSON output of hub push-image.
type pushImageView struct {
	publishView
	Image imageView `json:"image"`
}

// imageView is what push-image read from the archive.
type imageView struct {
	Name       string   `json:"name,omitempty"`
	Format     string   `json:"format"`
	Layers     int      `json:"layers"`
	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
	Env        []string `json:"env,omitempty"`
	WorkingDir string   `json:"working_dir,omitempty"`
	User       string   `json:"user,omitempty"`
	Notes      []string `json:"notes,omitempty"`
}

func newHubPushImageCommand(env Env, flags *hubFlags) *cobra.Command {
	var (
		id         identityFlags
		image      string
		platform   string
		keepMtimes bool
		scratch    string
	)
	cmd := &cobra.Command{
		Use:   "push-image PUBLISHER/REPO NAME ARCHIVE",
		Short: "Convert a container image archive into an flist and publish it",
		Long: `Convert the container image in ARCHIVE into an flist and publish it as NAME in
PUBLISHER/REPO, like publish does with a directory. ARCHIVE is what
'docker save' (or 'podman save') writes, or an OCI image layout (a directory,
or a tar of one); either tar may be gzip-compressed; '-' reads it from standard
input.

Every blob is checked against its digest; the layers are applied in order
(whiteouts and opaque directories hide what lower layers had); the image's
entrypoint, cmd, env, working directory and user are kept in the flist.
Content is cut into content-addressed blocks, so layers shared with images
published before are not uploaded again. What an flist does not keep (owners,
setuid bits, device nodes, extended attributes) is listed on standard error.

Prints the flist's URL: the value a deployment names the machine's image by.`,
		Example: `  docker save busybox:latest -o busybox.tar
  gridctl hub push-image tf/apps busybox busybox.tar --mnemonic-file ~/.grid/publisher
  docker save web:1.2 | gridctl hub push-image tf/apps web - --mnemonic-file ~/.grid/publisher
  gridctl hub push-image tf/apps web images.tar --image web:1.2 --platform linux/amd64 -o json`,
		Args: exactArgs(3, "PUBLISHER/REPO NAME ARCHIVE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, name, err := publishTarget(args)
			if err != nil {
				return err
			}
			archive := args[2]
			if archive != "-" {
				if _, err := os.Stat(archive); err != nil {
					return err
				}
			}
			ctx, cancel, s, err := flags.openAs(cmd, env, &id, ref.publisher)
			if err != nil {
				return err
			}
			defer cancel()
			if archive == "-" {
				p, cleanup, err := spool(env.Stdin, scratch)
				if err != nil {
					return fmt.Errorf("reading the archive from standard input: %w", err)
				}
				defer cleanup()
				archive = p
			}
			opts := oci.Options{Image: image, Platform: platform, OnLayer: func(l oci.Layer) {
				if l.Index == 1 {
					// Said once the archive is read and the image found, so
					// that a bad archive gets its one line only.
					fmt.Fprintf(env.Stderr, "converting %s from %s\n", name, args[2])
				}
				what := l.DiffID
				if l.Digest != "" {
					what = l.Digest
				}
				size := ""
				if l.Size >= 0 {
					size = " (" + fmtBytes(uint64(l.Size)) + ")"
				}
				fmt.Fprintf(env.Stderr, "layer %d of %d: %s%s\n", l.Index, l.Count, what, size)
			}}
			prog := newUploadProgress(env, "uploading "+name)
			res, err := s.pub.PublishImage(ctx, ref.publisher, ref.repo, name, archive, opts, hubclient.PublishOptions{
				KeepMtimes: keepMtimes, ScratchDir: scratch, Progress: prog,
			})
			prog.finish(err == nil)
			if res.Image != nil {
				for _, n := range res.Image.Notes {
					fmt.Fprintf(env.Stderr, "note: %s\n", n)
				}
			}
			if err != nil {
				return explainImage(s, args[2], err)
			}
			return printPushImage(s, ref, res, s.pub.FlistURL(ref.publisher, ref.repo, name))
		},
	}
	id.register(cmd)
	cmd.Flags().StringVar(&image, "image", "", "the image to convert when ARCHIVE holds several (`REF`, e.g. web:1.2)")
	cmd.Flags().StringVar(&platform, "platform", "", "the platform of a multi-platform image, `OS/ARCH[/VARIANT]` (default "+oci.DefaultPlatform+")")
	cmd.Flags().BoolVar(&keepMtimes, "keep-mtimes", false, "record modification times (by default the same content always gives the same flist)")
	cmd.Flags().StringVar(&scratch, "scratch-dir", "", "where blocks wait for upload (default: the system temporary directory)")
	return cmd
}

// spool copies r (an archive on standard input) into a temporary file:
// reading an archive needs random access.
func spool(r io.Reader, dir string) (string, func(), error) {
	f, err := os.CreateTemp(dir, "gridctl-image-*.tar")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { _ = os.Remove(f.Name()) }
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		cleanup()
		return "", nil, err
	}
	return f.Name(), cleanup, nil
}

// explainImage words a push-image failure: the archive's problems name the
// archive, the hub's are explained as for every hub command.
func explainImage(s *hubSession, archive string, err error) error {
	for _, k := range []error{oci.ErrInvalidArchive, oci.ErrDigestMismatch, oci.ErrUnsafePath, oci.ErrUnsupported, oci.ErrNoImage} {
		if errors.Is(err, k) {
			msg := strings.TrimPrefix(err.Error(), "oci: ")
			if !strings.Contains(msg, archive) {
				msg = archive + ": " + msg
			}
			return wrapMsg(err, "%s", msg)
		}
	}
	return s.explain(err)
}

func printPushImage(s *hubSession, ref repoRef, res hubclient.PublishResult, url string) error {
	im := res.Flist.Image
	view := pushImageView{
		publishView: newPublishView(ref, res, url),
		Image: imageView{
			Name: res.Image.Name, Format: res.Image.Format, Layers: len(res.Image.Layers),
			Entrypoint: im.Entrypoint, Cmd: im.Cmd, Env: im.Env, WorkingDir: im.WorkingDir, User: im.User,
			Notes: res.Image.Notes,
		},
	}
	if s.out.json {
		return s.out.JSON(view)
	}
	layers := "layers"
	if view.Image.Layers == 1 {
		layers = "layer"
	}
	image := fmt.Sprintf("%s, %d %s", view.Image.Format, view.Image.Layers, layers)
	if view.Image.Name != "" {
		image = view.Image.Name + " (" + image + ")"
	}
	pairs := view.fields([2]string{"image", image})
	list := func(key string, l []string) {
		if len(l) > 0 {
			b, _ := json.Marshal(l)
			pairs = append(pairs, [2]string{key, string(b)})
		}
	}
	list("entrypoint", im.Entrypoint)
	list("cmd", im.Cmd)
	list("env", im.Env)
	if im.WorkingDir != "" {
		pairs = append(pairs, [2]string{"workdir", im.WorkingDir})
	}
	if im.User != "" {
		pairs = append(pairs, [2]string{"user", im.User})
	}
	return s.out.fields(pairs)
}
