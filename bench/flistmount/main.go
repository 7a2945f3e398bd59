// Command flistmount measures how soon a workload starts on an flist
// mounted lazily (FUSE: blocks fetched on first read) against one
// downloaded whole first (a materialised tree), for an image much larger
// than what the workload reads. It publishes an image — a static busybox,
// a small file and -files random (incompressible) files of -size MiB in
// all — to a hub of its own on loopback, then, -runs times for each mode,
// on a fresh block cache: mounts the flist with flistd's Mounter and
// measures from the Mount call (a) until the first byte of the small file
// is read through the mount and (b) until a container (contd, runc) on
// the mount has run `cat` on that file. Needs root, runc and
// /bin/busybox.
//
//	flistmount -size 512 -runs 3
//
// See docs/benchmarks.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/grid4/grid4/bench/load"
	"github.com/grid4/grid4/hub"
	hubclient "github.com/grid4/grid4/hub/client"
	"github.com/grid4/grid4/keys"
	"github.com/grid4/grid4/node/contd"
	"github.com/grid4/grid4/node/flistd"
)

// serveArg makes this program a lazy mount's server: flistd's Mounter
// runs it so (MounterConfig.ServeCommand), as zosd's hidden subcommand on
// a node.
const serveArg = "flistd-serve-lazy"

func main() {
	if len(os.Args) > 1 && os.Args[1] == serveArg {
		load.Main("flistmount "+serveArg, func(ctx context.Context, args []string, _, stderr io.Writer) error {
			return flistd.ServeLazyMain(ctx, args[1:], stderr)
		})
		return
	}
	load.Main("flistmount", run)
}

// options are the command's flags.
type options struct {
	sizeMiB, files, runs int
	dir, runtime         string
}

// result is one measured mount.
type result struct {
	firstByte, started time.Duration
	downloaded         int64
}

// hello is the small file the workload reads.
const hello = "hello from the image\n"

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o options
	fs := flag.NewFlagSet("flistmount", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.sizeMiB, "size", 512, "MiB of random data in the image")
	fs.IntVar(&o.files, "files", 4, "files the random data is split into")
	fs.IntVar(&o.runs, "runs", 3, "measured mounts per mode, each on a fresh cache")
	fs.StringVar(&o.dir, "dir", os.TempDir(), "scratch directory (needs twice -size free, on a file system overlayfs accepts as upper)")
	fs.StringVar(&o.runtime, "runtime", contd.DefaultRuntime, "OCI runtime: runc or crun")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.sizeMiB < 1 || o.files < 1 || o.runs < 1 || fs.NArg() > 0 {
		return errors.New("-size, -files and -runs must be at least 1; no arguments")
	}
	work, err := os.MkdirTemp(o.dir, "flistmount-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	start := time.Now()
	flistURL, hubURL, err := publish(ctx, work, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "published %d MiB in %d files in %s\n", o.sizeMiB, o.files, time.Since(start).Round(time.Millisecond))
	svc, err := contd.New(contd.Config{Dir: filepath.Join(work, "contd"), Runtime: o.runtime, Salt: fmt.Sprintf("b%x", rand.Uint64()), StopGrace: 200 * time.Millisecond})
	if err != nil {
		return err
	}
	modes := []string{"lazy", "materialized"}
	res := map[string][]result{}
	for i := range o.runs {
		for _, mode := range modes {
			r, err := measure(ctx, svc, filepath.Join(work, fmt.Sprintf("%s-%d", mode, i)), hubURL, flistURL, mode == "materialized")
			if err != nil {
				return fmt.Errorf("%s run %d: %w", mode, i+1, err)
			}
			fmt.Fprintf(stderr, "%s run %d: first byte %s, container %s, downloaded %.1f MiB\n", mode, i+1, r.firstByte.Round(time.Millisecond), r.started.Round(time.Millisecond), float64(r.downloaded)/(1<<20))
			res[mode] = append(res[mode], r)
		}
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "mode\tfirst byte (median)\tcontainer started (median)\tdownloaded\n")
	for _, mode := range modes {
		fb := median(res[mode], func(r result) time.Duration { return r.firstByte })
		st := median(res[mode], func(r result) time.Duration { return r.started })
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f MiB\n", mode, fb.Round(time.Millisecond), st.Round(time.Millisecond), float64(res[mode][0].downloaded)/(1<<20))
	}
	return tw.Flush()
}

func median(rs []result, f func(result) time.Duration) time.Duration {
	ds := make([]time.Duration, len(rs))
	for i, r := range rs {
		ds[i] = f(r)
	}
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// publish builds the image and publishes it to a hub serving on loopback
// until ctx ends; it returns the flist's URL and the hub's.
func publish(ctx context.Context, work string, o options) (flistURL, hubURL string, err error) {
	img := filepath.Join(work, "image")
	if err := buildImage(img, o); err != nil {
		return "", "", err
	}
	kp, err := keys.Generate(keys.Ed25519)
	if err != nil {
		return "", "", err
	}
	cfg := hub.DefaultConfig()
	cfg.DataDir = filepath.Join(work, "hub")
	cfg.Publishers = []hub.Publisher{{Name: "bench", ID: hub.PublisherID("bench"), PublicKey: kp.Public().Key}}
	srv, err := hub.New(cfg, hub.Deps{})
	if err != nil {
		return "", "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", err
	}
	go func() { _ = srv.Serve(ctx, ln) }()
	hubURL = "http://" + ln.Addr().String()
	anon, err := hubclient.New(hubURL, nil)
	if err != nil {
		return "", "", err
	}
	pub, err := anon.AsPublisher(ctx, "bench", kp)
	if err != nil {
		return "", "", err
	}
	res, err := pub.PublishDir(ctx, "bench", "image", "image", img, hubclient.PublishOptions{ScratchDir: work})
	if err != nil {
		return "", "", err
	}
	return hubURL + "/api/v1/flists/" + res.Flist.ID().String(), hubURL, nil
}

// buildImage writes the image's tree: bin/busybox with sh, cat and sleep,
// etc/hello, and the random files under data/.
func buildImage(img string, o options) error {
	for _, d := range []string{"bin", "etc", "data", "tmp"} {
		if err := os.MkdirAll(filepath.Join(img, d), 0o755); err != nil {
			return err
		}
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return fmt.Errorf("a static busybox is needed (package busybox-static): %w", err)
	}
	if err := os.WriteFile(filepath.Join(img, "bin", "busybox"), bb, 0o755); err != nil {
		return err
	}
	for _, a := range []string{"sh", "cat", "sleep"} {
		if err := os.Symlink("busybox", filepath.Join(img, "bin", a)); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(img, "etc", "hello"), []byte(hello), 0o644); err != nil {
		return err
	}
	rng := rand.NewChaCha8([32]byte{byte(time.Now().UnixNano())})
	total := int64(o.sizeMiB) << 20
	for i := range o.files {
		n := total / int64(o.files)
		if i == o.files-1 {
			n = total - n*int64(o.files-1)
		}
		f, err := os.Create(filepath.Join(img, "data", fmt.Sprintf("blob-%d", i)))
		if err != nil {
			return err
		}
		_, err = io.CopyN(f, rng, n)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// measure mounts the flist on a fresh cache under dir (lazily, or
// materialised) and times the first byte of etc/hello and a container
// that cats it.
func measure(ctx context.Context, svc *contd.Service, dir, hubURL, flistURL string, materialize bool) (result, error) {
	var r result
	m, err := flistd.New(flistd.Config{HubURL: hubURL, CacheDir: filepath.Join(dir, "cache"), CacheLimit: 4 << 30}, &http.Client{})
	if err != nil {
		return r, err
	}
	defer m.Close()
	defer os.RemoveAll(dir)
	exe, err := os.Executable()
	if err != nil {
		return r, err
	}
	mt, err := flistd.NewMounter(m, flistd.MounterConfig{Dir: filepath.Join(dir, "flist"), Root: dir, Lazy: !materialize, ServeCommand: []string{exe, serveArg}})
	if err != nil {
		return r, err
	}
	target := filepath.Join(dir, "root")
	id := filepath.Base(dir)
	log := filepath.Join(dir, "container.log")
	t0 := time.Now()
	if _, err := mt.Mount(ctx, flistURL, target); err != nil {
		return r, err
	}
	defer mt.Unmount(context.WithoutCancel(ctx), target)
	f, err := os.Open(filepath.Join(target, "etc", "hello"))
	if err != nil {
		return r, err
	}
	b := make([]byte, 1)
	_, err = f.Read(b)
	f.Close()
	if err != nil {
		return r, err
	}
	r.firstByte = time.Since(t0)
	sp := contd.Spec{ID: id, Root: target, Args: []string{"/bin/sh", "-c", "cat /etc/hello; exec sleep 600"}, Log: log}
	if err := svc.Start(ctx, sp); err != nil {
		return r, err
	}
	defer svc.Stop(context.WithoutCancel(ctx), id)
	for {
		if out, _ := os.ReadFile(log); strings.Contains(string(out), hello) {
			break
		}
		if time.Since(t0) > 5*time.Minute {
			return r, errors.New("the container did not print the file within 5 minutes")
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
	r.started = time.Since(t0)
	// The blocks in the fresh cache: a lazy mount's server downloads
	// them, not m.
	r.downloaded, err = dirSize(filepath.Join(dir, "cache", "blocks"))
	return r, err
}

// dirSize sums the sizes of the files under dir.
func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			n += info.Size()
		}
		return err
	})
	return n, err
}
