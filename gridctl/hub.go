package gridctl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/grid4/grid4/flist"
	hubapi "github.com/grid4/grid4/hub/api"
	hubclient "github.com/grid4/grid4/hub/client"
	"github.com/grid4/grid4/keys"
)

// HubEnv is the environment variable naming the hub when --hub is not
// given.
const HubEnv = "GRID_HUB"

// defaultHubTimeout bounds a hub command. Publishing a large tree over a
// slow link takes a while, so it is longer than the registrar's.
const defaultHubTimeout = 30 * time.Minute

var errNoHub = errors.New("no hub: pass --hub URL or set " + HubEnv)

// hubFlags are the flags shared by the hub commands.
type hubFlags struct {
	url     string
	output  string
	timeout time.Duration
}

func (f *hubFlags) register(cmd *cobra.Command) {
	fl := cmd.PersistentFlags()
	fl.StringVar(&f.url, "hub", "", "hub `URL`, e.g. https://hub.example.org (default $"+HubEnv+")")
	fl.StringVarP(&f.output, "output", "o", "text", "output format: text (aligned tables) or json")
	fl.DurationVar(&f.timeout, "timeout", defaultHubTimeout, "give up after this long")
	_ = cmd.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"text\taligned tables", "json\tfor scripts"}, cobra.ShellCompDirectiveNoFileComp
	})
}

// hubSession is what a hub command runs with.
type hubSession struct {
	env    Env
	flags  *hubFlags
	client *hubclient.Client
	out    *printer
	// pub publishes as the publisher given to openAs, with key; nil after
	// open.
	pub *hubclient.Client
	key keys.KeyPair
}

// open checks the flags and builds the (unsigned) client; the context
// carries --timeout.
func (f *hubFlags) open(cmd *cobra.Command, env Env) (context.Context, context.CancelFunc, *hubSession, error) {
	if f.output != "text" && f.output != "json" {
		return nil, nil, nil, fmt.Errorf("--output %q: want text or json", f.output)
	}
	if f.timeout <= 0 {
		return nil, nil, nil, fmt.Errorf("--timeout %s: want a positive duration", f.timeout)
	}
	u, source := strings.TrimSpace(f.url), "--hub"
	if u == "" {
		u, source = strings.TrimSpace(env.Getenv(HubEnv)), HubEnv
	}
	if u == "" {
		return nil, nil, nil, errNoHub
	}
	c, err := hubclient.New(u, nil)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", source, err)
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
	return ctx, cancel, &hubSession{env: env, flags: f, client: c, out: newPrinter(env, f.output)}, nil
}

// openAs is open for a command that publishes as pub: it also loads the
// identity id names and sets s.key to it and s.pub to a client publishing
// as pub with it.
func (f *hubFlags) openAs(cmd *cobra.Command, env Env, id *identityFlags, pub string) (context.Context, context.CancelFunc, *hubSession, error) {
	ctx, cancel, s, err := f.open(cmd, env)
	if err != nil {
		return nil, nil, nil, err
	}
	if s.key, err = id.load(cmd, env); err == nil {
		if s.pub, err = s.client.AsPublisher(ctx, pub, s.key); err != nil {
			err = s.explain(err)
		}
	}
	if err != nil {
		cancel()
		return nil, nil, nil, err
	}
	return ctx, cancel, s, nil
}

// explain words a hub client error as the one line gridctl prints.
func (s *hubSession) explain(err error) error {
	if err == nil {
		return nil
	}
	var ae *hubclient.APIError
	switch {
	case errors.As(err, &ae):
		if ae.Status >= 500 {
			return wrapMsg(err, "hub failed: %s (%d)", ae.Message, ae.Status)
		}
		return wrapMsg(err, "hub refused: %s (%d)", ae.Message, ae.Status)
	case errors.Is(err, hubclient.ErrNotPublisher):
		return wrapMsg(err, "%s", strings.TrimPrefix(err.Error(), hubclient.ErrNotPublisher.Error()+": "))
	case errors.Is(err, hubclient.ErrUnreachable):
		return wrapMsg(err, "cannot reach hub at %s: %s", s.client.URL(), networkReason(err))
	case errors.Is(err, context.DeadlineExceeded):
		return wrapMsg(err, "hub at %s did not answer within %s (--timeout)", s.client.URL(), s.flags.timeout)
	case errors.Is(err, context.Canceled):
		return wrapMsg(err, "interrupted")
	case errors.Is(err, hubclient.ErrBadResponse):
		return wrapMsg(err, "unexpected answer from hub at %s: %s", s.client.URL(), err)
	}
	return err
}

// repoRef is PUBLISHER/REPO with an optional :NAME (a tag or link).
type repoRef struct {
	publisher, repo, name string
}

func (r repoRef) String() string {
	s := r.publisher
	if r.repo != "" {
		s += "/" + r.repo
	}
	if r.name != "" {
		s += ":" + r.name
	}
	return s
}

// parseRepoRef parses PUBLISHER, PUBLISHER/REPO or PUBLISHER/REPO:NAME;
// allowShort allows a publisher alone, allowName a :NAME.
func parseRepoRef(s string, allowShort, allowName bool) (repoRef, error) {
	var r repoRef
	rest, name, hasName := strings.Cut(s, ":")
	pub, repo, hasRepo := strings.Cut(rest, "/")
	r = repoRef{publisher: pub, repo: repo, name: name}
	want := "PUBLISHER/REPO"
	if allowName {
		want += "[:TAG]"
	}
	if hasName && (!allowName || !hasRepo) || !hasRepo && !allowShort {
		return r, fmt.Errorf("%q: want %s", s, want)
	}
	parts := []string{pub}
	if hasRepo {
		parts = append(parts, repo)
	}
	if hasName {
		parts = append(parts, name)
	}
	for _, n := range parts {
		if err := checkName(n); err != nil {
			return r, fmt.Errorf("%q: %w", s, err)
		}
	}
	return r, nil
}

// checkName checks a publisher, repository, flist, tag or link name,
// saying what is wrong without the library's prefix.
func checkName(n string) error {
	if err := flist.ValidName(n); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), flist.ErrInvalid.Error()+": "))
	}
	return nil
}

func newHubCommand(env Env) *cobra.Command {
	var flags hubFlags
	cmd := &cobra.Command{
		Use:   "hub",
		Short: "Publish flists, tags and links to a hub, and list them",
		Long: `Publish packages (flists, from a directory or a container image archive) to
a grid4 hub, group them into signed tags (releases) and point links at tags;
list what a hub holds.

A repository is PUBLISHER/REPO. Publishing needs the identity of the publisher
(the key the hub is configured with for that name): --mnemonic-file PATH,
--seed-file PATH or $` + MnemonicEnv + `. Reading needs none.`,
		Example: `  gridctl hub publish tf/zos containerd ./build/containerd --mnemonic-file ~/.grid/publisher
  gridctl hub publish tf/zos zos ./build/zos --mnemonic-file ~/.grid/publisher
  gridctl hub push-image tf/apps web web.tar --mnemonic-file ~/.grid/publisher
  gridctl hub tag tf/zos v4.1.2 --dep containerd --zos zos --mnemonic-file ~/.grid/publisher
  gridctl hub link tf/zos production v4.1.2 --mnemonic-file ~/.grid/publisher
  gridctl hub ls tf/zos:production`,
		Args: noArgs,
		RunE: showHelp,
	}
	flags.register(cmd)
	cmd.AddCommand(newHubPublishCommand(env, &flags), newHubPushImageCommand(env, &flags), newHubTagCommand(env, &flags), newHubLinkCommand(env, &flags), newHubLsCommand(env, &flags))
	return cmd
}

// publishView is the JSON output of hub publish.
type publishView struct {
	Repo          string           `json:"repo"`
	Flist         hubapi.FlistInfo `json:"flist"`
	URL           string           `json:"url"`
	Blocks        int              `json:"blocks"`
	Uploaded      int              `json:"uploaded"`
	UploadedBytes int64            `json:"uploaded_bytes"`
}

// newPublishView is what publish and push-image say of res, published in
// ref at url.
func newPublishView(ref repoRef, res hubclient.PublishResult, url string) publishView {
	return publishView{Repo: ref.String(), Flist: res.Info, URL: url, Blocks: res.Blocks, Uploaded: res.Uploaded, UploadedBytes: res.UploadedBytes}
}

// fields is the text output of v: after the url come extra (push-image's
// image), then the flist's size and blocks.
func (v publishView) fields(extra ...[2]string) [][2]string {
	pairs := [][2]string{{"repo", v.Repo}, {"name", v.Flist.Name}, {"flist", v.Flist.Flist.String()}, {"url", v.URL}}
	pairs = append(pairs, extra...)
	return append(pairs,
		[2]string{"size", fmtBytes(uint64(v.Flist.Size))},
		[2]string{"entries", strconv.Itoa(v.Flist.Entries)},
		[2]string{"blocks", fmt.Sprintf("%d (%d uploaded, %s; %d already on the hub)", v.Blocks, v.Uploaded, fmtBytes(uint64(v.UploadedBytes)), v.Blocks-v.Uploaded)})
}

func newHubPublishCommand(env Env, flags *hubFlags) *cobra.Command {
	var (
		id         identityFlags
		keepMtimes bool
		scratch    string
	)
	cmd := &cobra.Command{
		Use:   "publish PUBLISHER/REPO NAME DIR",
		Short: "Build an flist of a directory and publish it",
		Long: `Build an flist of DIR (directories, files, symlinks; content cut into
compressed, content-addressed blocks), upload the blocks the hub does not have
yet, and publish the flist as NAME in PUBLISHER/REPO (replacing what NAME
pointed at). Prints the flist's id, the hash tags refer to it by.

Upload progress goes to standard error: a progress bar on a terminal, a few
plain lines otherwise.`,
		Example: `  gridctl hub publish tf/zos zos ./build/zos --mnemonic-file ~/.grid/publisher
  gridctl hub publish tf/zos zos ./build/zos -o json`,
		Args: exactArgs(3, "PUBLISHER/REPO NAME DIR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, name, err := publishTarget(args)
			if err != nil {
				return err
			}
			dir := args[2]
			if st, err := os.Stat(dir); err != nil {
				return err
			} else if !st.IsDir() {
				return fmt.Errorf("%s is not a directory", dir)
			}
			ctx, cancel, s, err := flags.openAs(cmd, env, &id, ref.publisher)
			if err != nil {
				return err
			}
			defer cancel()
			prog := newUploadProgress(env, "uploading "+name)
			// Building a large tree takes a while: say what is going on.
			fmt.Fprintf(env.Stderr, "building %s from %s\n", name, dir)
			res, err := s.pub.PublishDir(ctx, ref.publisher, ref.repo, name, dir, hubclient.PublishOptions{
				KeepMtimes: keepMtimes, ScratchDir: scratch, Progress: prog,
			})
			prog.finish(err == nil)
			if err != nil {
				return s.explain(err)
			}
			view := newPublishView(ref, res, s.pub.FlistURL(ref.publisher, ref.repo, name))
			if s.out.json {
				return s.out.JSON(view)
			}
			return s.out.fields(view.fields())
		},
	}
	id.register(cmd)
	cmd.Flags().BoolVar(&keepMtimes, "keep-mtimes", false, "record modification times (by default the same tree always gives the same flist)")
	cmd.Flags().StringVar(&scratch, "scratch-dir", "", "where blocks wait for upload (default: the system temporary directory)")
	return cmd
}

// publishTarget reads the PUBLISHER/REPO and NAME arguments of publish and
// push-image.
func publishTarget(args []string) (repoRef, string, error) {
	ref, err := parseRepoRef(args[0], false, false)
	if err != nil {
		return repoRef{}, "", err
	}
	if err := checkName(args[1]); err != nil {
		return repoRef{}, "", fmt.Errorf("flist name %q: %w", args[1], err)
	}
	return ref, args[1], nil
}

// tagEntryFlag collects --dep values in order.
type tagEntryFlag struct{ values []string }

func (f *tagEntryFlag) String() string { return strings.Join(f.values, ",") }
func (f *tagEntryFlag) Set(v string) error {
	f.values = append(f.values, v)
	return nil
}
func (f *tagEntryFlag) Type() string { return "NAME[=FLIST]" }

// tagView is the JSON output of hub tag and of hub ls REPO:TAG.
type tagView struct {
	Repo      string         `json:"repo"`
	Link      string         `json:"link,omitempty"`
	Tag       hubapi.TagInfo `json:"tag"`
	Alg       string         `json:"alg"`
	Verified  bool           `json:"signature_verified"`
	VerifyKey string         `json:"verified_with,omitempty"`
}

func newHubTagCommand(env Env, flags *hubFlags) *cobra.Command {
	var (
		id   identityFlags
		deps tagEntryFlag
		zos  string
	)
	cmd := &cobra.Command{
		Use:   "tag PUBLISHER/REPO TAG",
		Short: "Sign and publish a tag: a release made of flists",
		Long: `Sign and publish TAG in PUBLISHER/REPO: the ordered list of flists of one
release. --dep entries are installed first, in the order given; the --zos entry
last. Each is NAME (the flist published under that name in the repository) or
NAME=FLIST (NAME for the entry, FLIST an flist id or another flist name of the
repository). The tag document is signed with the publisher's key, so nodes can
check it without trusting the hub. Tags are immutable: publish a new one for a
new release.`,
		Example: `  gridctl hub tag tf/zos v4.1.2 --dep containerd --dep runc --zos zos --mnemonic-file ~/.grid/publisher
  gridctl hub tag tf/zos v4.1.3 --dep containerd=4f0c...e1 --zos zos=zos-4.1.3`,
		Args: exactArgs(2, "PUBLISHER/REPO TAG"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := parseRepoRef(args[0], false, false)
			if err != nil {
				return err
			}
			name := args[1]
			if err := checkName(name); err != nil {
				return fmt.Errorf("tag %q: %w", name, err)
			}
			if len(deps.values) == 0 && zos == "" {
				return errors.New("a tag needs flists: give --dep NAME (repeatable) and/or --zos NAME")
			}
			ctx, cancel, s, err := flags.openAs(cmd, env, &id, ref.publisher)
			if err != nil {
				return err
			}
			defer cancel()
			t := &flist.Tag{Publisher: ref.publisher, Repo: ref.repo, Name: name, Created: time.Now().Unix()}
			add := func(v string, role flist.Role) error {
				e, err := s.tagEntry(ctx, ref, v, role)
				if err != nil {
					return err
				}
				t.Entries = append(t.Entries, e)
				return nil
			}
			for _, v := range deps.values {
				if err := add(v, flist.RoleDependency); err != nil {
					return err
				}
			}
			if zos != "" {
				if err := add(zos, flist.RoleZos); err != nil {
					return err
				}
			}
			st, err := flist.SignTag(t, s.key)
			if err != nil {
				return err
			}
			info, err := s.pub.PutTag(ctx, st)
			if errors.Is(err, hubclient.ErrConflict) {
				// Running the same command again (after a lost answer, say)
				// signs a new document (another created time): if the tag on
				// the hub holds the same flists, it is already done.
				if same, existing := s.sameTag(ctx, t, s.key.Public().Key); same {
					fmt.Fprintf(env.Stderr, "tag %s:%s was already published with these flists\n", ref, name)
					st, info, err = existing, hubapi.TagInfo{}, nil
					if et, perr := existing.Tag(); perr == nil {
						info = tagInfoOf(existing, et)
					}
				}
			}
			if err != nil {
				return s.explain(err)
			}
			return s.printTag(tagView{Repo: ref.String(), Tag: info, Alg: string(st.Alg), Verified: true,
				VerifyKey: keys.SS58Encode(s.key.Public().Key, keys.GenericSS58Prefix)})
		},
	}
	id.register(cmd)
	cmd.Flags().Var(&deps, "dep", "a dependency flist, installed before the zos one (repeatable, in order)")
	cmd.Flags().StringVar(&zos, "zos", "", "the zos flist, installed last (`NAME[=FLIST]`)")
	return cmd
}

// sameTag reports whether the hub's tag of t's name, signed by key, lists
// exactly t's entries, and returns it.
func (s *hubSession) sameTag(ctx context.Context, t *flist.Tag, key []byte) (bool, flist.SignedTag) {
	st, err := s.client.Tag(ctx, t.Publisher, t.Repo, t.Name)
	if err != nil {
		return false, st
	}
	old, err := flist.VerifyTag(st, key)
	if err != nil || old.Publisher != t.Publisher || old.Repo != t.Repo || old.Name != t.Name {
		return false, st
	}
	return slices.Equal(old.Entries, t.Entries), st
}

// tagInfoOf summarises a signed tag as the hub lists it (without the
// publication time).
func tagInfoOf(st flist.SignedTag, t *flist.Tag) hubapi.TagInfo {
	info := hubapi.TagInfo{Tag: t.Name, Hash: st.Hash(), Created: time.Unix(t.Created, 0).UTC(), Entries: make([]hubapi.TagEntryInfo, len(t.Entries))}
	for i, e := range t.Entries {
		info.Entries[i] = hubapi.TagEntryInfo(e)
	}
	return info
}

// tagEntry resolves NAME or NAME=FLIST (an id or a flist name).
func (s *hubSession) tagEntry(ctx context.Context, ref repoRef, v string, role flist.Role) (flist.TagEntry, error) {
	name, target, hasTarget := strings.Cut(v, "=")
	if !hasTarget {
		target = name
	}
	if err := checkName(name); err != nil {
		return flist.TagEntry{}, fmt.Errorf("entry %q: %w", v, err)
	}
	if id, err := flist.ParseID(target); err == nil {
		return flist.TagEntry{Name: name, Flist: id, Role: role}, nil
	}
	fi, err := s.client.FlistInfo(ctx, ref.publisher, ref.repo, target)
	if errors.Is(err, hubclient.ErrNotFound) {
		return flist.TagEntry{}, fmt.Errorf("entry %q: no flist %s in %s (publish it first, or give NAME=FLIST_ID)", v, target, ref)
	}
	if err != nil {
		return flist.TagEntry{}, s.explain(err)
	}
	return flist.TagEntry{Name: name, Flist: fi.Flist, Role: role}, nil
}

func (s *hubSession) printTag(v tagView) error {
	if s.out.json {
		return s.out.JSON(v)
	}
	sig := s.out.style(styleRed, "NOT VERIFIED")
	if v.Verified {
		sig = s.out.style(styleGreen, "valid") + " (" + v.Alg + ", key " + v.VerifyKey + ")"
	}
	pairs := [][2]string{{"repo", v.Repo}}
	if v.Link != "" {
		pairs = append(pairs, [2]string{"link", v.Link + " -> " + v.Tag.Tag})
	}
	pairs = append(pairs,
		[2]string{"tag", v.Tag.Tag},
		[2]string{"hash", v.Tag.Hash.String()},
		[2]string{"signature", sig},
		[2]string{"created", fmtTime(v.Tag.Created)},
	)
	if !v.Tag.Published.IsZero() {
		pairs = append(pairs, [2]string{"published", fmtTime(v.Tag.Published)})
	}
	if err := s.out.fields(pairs); err != nil {
		return err
	}
	fmt.Fprintln(s.out.w)
	rows := make([][]string, len(v.Tag.Entries))
	for i, e := range v.Tag.Entries {
		rows[i] = []string{strconv.Itoa(i + 1), e.Name, string(e.Role), e.Flist.String()}
	}
	return s.out.table([]string{"#", "NAME", "ROLE", "FLIST"}, rows)
}

func newHubLinkCommand(env Env, flags *hubFlags) *cobra.Command {
	var (
		id     identityFlags
		remove bool
	)
	cmd := &cobra.Command{
		Use:   "link PUBLISHER/REPO LINK [TAG]",
		Short: "Point a link at a tag, or delete it",
		Long: `Point LINK (e.g. production, testing) at TAG of the same repository, or
remove it with --delete. Links are how a release line names its current
release; they are not signed (nodes check the tag a link names).`,
		Example: `  gridctl hub link tf/zos production v4.1.2 --mnemonic-file ~/.grid/publisher
  gridctl hub link tf/zos testing --delete --mnemonic-file ~/.grid/publisher`,
		Args: func(cmd *cobra.Command, args []string) error {
			if remove && len(args) != 2 || !remove && len(args) != 3 {
				return fmt.Errorf("%q takes PUBLISHER/REPO LINK TAG (or PUBLISHER/REPO LINK --delete) (see '%s --help')", cmd.CommandPath(), cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := parseRepoRef(args[0], false, false)
			if err != nil {
				return err
			}
			for _, n := range args[1:] {
				if err := checkName(n); err != nil {
					return fmt.Errorf("%q: %w", n, err)
				}
			}
			ctx, cancel, s, err := flags.openAs(cmd, env, &id, ref.publisher)
			if err != nil {
				return err
			}
			defer cancel()
			if remove {
				if err := s.pub.DeleteLink(ctx, ref.publisher, ref.repo, args[1]); err != nil {
					return s.explain(err)
				}
				if s.out.json {
					return s.out.JSON(map[string]any{"repo": ref.String(), "link": args[1], "deleted": true})
				}
				return s.out.fields([][2]string{{"repo", ref.String()}, {"deleted link", args[1]}})
			}
			li, err := s.pub.PutLink(ctx, ref.publisher, ref.repo, args[1], args[2])
			if err != nil {
				return s.explain(err)
			}
			if s.out.json {
				return s.out.JSON(li)
			}
			return s.out.fields([][2]string{{"repo", ref.String()}, {"link", li.Link + " -> " + li.Tag}, {"updated", fmtTime(li.Updated)}})
		},
	}
	id.register(cmd)
	cmd.Flags().BoolVar(&remove, "delete", false, "remove the link")
	return cmd
}

func newHubLsCommand(env Env, flags *hubFlags) *cobra.Command {
	var (
		publishers bool
		keyArg     string
	)
	cmd := &cobra.Command{
		Use:   "ls [PUBLISHER[/REPO[:TAG]]]",
		Short: "List repositories, a repository's flists, tags and links, or a tag",
		Long: `Without argument, list every repository (or, with --publishers, the hub's
publishers); with PUBLISHER, its repositories; with PUBLISHER/REPO, its flists,
tags and links; with PUBLISHER/REPO:NAME, the tag NAME (or the tag the link NAME
points at) with its flists and whether its signature verifies. The signature is
checked with --publisher-key when given (a key you trust), else with the key the
hub says the publisher has.`,
		Example: `  gridctl hub ls
  gridctl hub ls tf/zos
  gridctl hub ls tf/zos:production --publisher-key 5F...
  gridctl hub ls --publishers -o json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return fmt.Errorf("%q takes at most one PUBLISHER[/REPO[:TAG]] (see '%s --help')", cmd.CommandPath(), cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var ref repoRef
			if len(args) == 1 {
				var err error
				if ref, err = parseRepoRef(args[0], true, true); err != nil {
					return err
				}
			}
			ctx, cancel, s, err := flags.open(cmd, env)
			if err != nil {
				return err
			}
			defer cancel()
			switch {
			case publishers:
				return s.lsPublishers(ctx)
			case ref.name != "":
				return s.lsTag(ctx, ref, keyArg)
			case ref.repo != "":
				return s.lsRepo(ctx, ref)
			}
			return s.lsRepos(ctx, ref.publisher)
		},
	}
	cmd.Flags().BoolVar(&publishers, "publishers", false, "list the hub's publishers")
	cmd.Flags().StringVar(&keyArg, "publisher-key", "", "check tag signatures with this public `KEY` (hex or SS58) instead of the hub's")
	return cmd
}

func (s *hubSession) lsPublishers(ctx context.Context) error {
	pubs, err := s.client.Publishers(ctx)
	if err != nil {
		return s.explain(err)
	}
	if s.out.json {
		return s.out.JSON(pubs)
	}
	rows := make([][]string, len(pubs))
	for i, p := range pubs {
		rows[i] = []string{p.Name, p.SS58, strconv.FormatUint(p.ID, 10)}
	}
	return s.out.table([]string{"PUBLISHER", "KEY", "ID"}, rows)
}

func (s *hubSession) lsRepos(ctx context.Context, publisher string) error {
	repos, err := s.client.Repos(ctx, publisher)
	if err != nil {
		return s.explain(err)
	}
	if s.out.json {
		return s.out.JSON(repos)
	}
	rows := make([][]string, len(repos))
	for i, r := range repos {
		rows[i] = []string{r.Publisher + "/" + r.Repo, strconv.Itoa(r.Flists), strconv.Itoa(r.Tags), strconv.Itoa(r.Links)}
	}
	return s.out.table([]string{"REPO", "FLISTS", "TAGS", "LINKS"}, rows)
}

func (s *hubSession) lsRepo(ctx context.Context, ref repoRef) error {
	l, err := s.client.Repo(ctx, ref.publisher, ref.repo)
	if err != nil {
		return s.explain(err)
	}
	if s.out.json {
		return s.out.JSON(l)
	}
	fmt.Fprintln(s.out.w, s.out.style(styleBold, "flists"))
	rows := make([][]string, len(l.Flists))
	for i, f := range l.Flists {
		rows[i] = []string{f.Name, f.Flist.String(), fmtBytes(uint64(f.Size)), strconv.Itoa(f.Blocks), fmtTime(f.Updated)}
	}
	if err := s.out.table([]string{"NAME", "FLIST", "SIZE", "BLOCKS", "UPDATED"}, rows); err != nil {
		return err
	}
	fmt.Fprintln(s.out.w, "\n"+s.out.style(styleBold, "tags"))
	rows = make([][]string, len(l.Tags))
	for i, t := range l.Tags {
		names := make([]string, len(t.Entries))
		for j, e := range t.Entries {
			names[j] = e.Name
		}
		rows[i] = []string{t.Tag, t.Hash.String(), strings.Join(names, ","), fmtTime(t.Published)}
	}
	if err := s.out.table([]string{"TAG", "HASH", "FLISTS", "PUBLISHED"}, rows); err != nil {
		return err
	}
	fmt.Fprintln(s.out.w, "\n"+s.out.style(styleBold, "links"))
	rows = make([][]string, len(l.Links))
	for i, li := range l.Links {
		rows[i] = []string{li.Link, li.Tag, fmtTime(li.Updated)}
	}
	return s.out.table([]string{"LINK", "TAG", "UPDATED"}, rows)
}

// lsTag shows a tag (or the tag a link names) and checks its signature.
func (s *hubSession) lsTag(ctx context.Context, ref repoRef, keyArg string) error {
	view := tagView{Repo: ref.publisher + "/" + ref.repo}
	tagName := ref.name
	st, err := s.client.Tag(ctx, ref.publisher, ref.repo, tagName)
	if errors.Is(err, hubclient.ErrNotFound) {
		li, lerr := s.client.Link(ctx, ref.publisher, ref.repo, ref.name)
		if errors.Is(lerr, hubclient.ErrNotFound) {
			return fmt.Errorf("%s has no tag or link called %s", view.Repo, ref.name)
		}
		if lerr != nil {
			return s.explain(lerr)
		}
		view.Link, tagName = li.Link, li.Tag
		st, err = s.client.Tag(ctx, ref.publisher, ref.repo, tagName)
	}
	if err != nil {
		return s.explain(err)
	}
	var key []byte
	if keyArg != "" {
		if key, err = keys.ParsePublicKey(keyArg); err != nil {
			return fmt.Errorf("--publisher-key: %w", err)
		}
	} else {
		pubs, err := s.client.Publishers(ctx)
		if err != nil {
			return s.explain(err)
		}
		for _, p := range pubs {
			if p.Name == ref.publisher {
				key, _ = keys.ParsePublicKey(p.PublicKey)
			}
		}
	}
	t, verr := flist.VerifyTag(st, key)
	if verr != nil {
		// Show what the hub serves anyway, marked as not verified.
		if t, err = st.Tag(); err != nil {
			return fmt.Errorf("%s:%s: the hub serves an invalid tag: %w", view.Repo, tagName, err)
		}
	} else if t.Publisher != ref.publisher || t.Repo != ref.repo || t.Name != tagName {
		verr = fmt.Errorf("the document is %s/%s:%s", t.Publisher, t.Repo, t.Name)
	}
	view.Verified = verr == nil
	view.Alg = string(st.Alg)
	if len(key) == keys.PublicKeySize {
		view.VerifyKey = keys.SS58Encode(key, keys.GenericSS58Prefix)
	}
	view.Tag = tagInfoOf(st, t)
	if err := s.printTag(view); err != nil {
		return err
	}
	if verr != nil {
		return fmt.Errorf("tag %s:%s: signature not verified: %w", view.Repo, tagName, verr)
	}
	return nil
}
