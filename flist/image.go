package flist

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits of an flist's image metadata (docs/flist.md § Image metadata).
const (
	// MaxImageList bounds the entrypoint, cmd and env lists, each.
	MaxImageList = 1024
	// MaxImageString bounds one string of the image metadata, in bytes
	// (Linux's MAX_ARG_STRLEN is 128 KiB; an argument this long is a
	// mistake, not a program).
	MaxImageString = 32 << 10
	// MaxImageSize bounds all the strings of the image metadata together.
	MaxImageSize = 256 << 10
)

// Image is what a container image says about running its tree: the
// process to start and its environment. An flist built from a container
// image carries it (Flist.Image); a plain package has none. The fields are
// those of an OCI image configuration, kept as the image gives them:
// interpreting them (an Entrypoint followed by Cmd, Env on top of the
// runtime's defaults, a User name looked up in the tree's /etc/passwd) is
// the runtime's job.
type Image struct {
	// Entrypoint is the command that starts the container, arguments
	// included; Cmd follows it (or is the command when Entrypoint is
	// empty).
	Entrypoint []string
	// Cmd is the default arguments (or command).
	Cmd []string
	// Env holds KEY=VALUE entries, in the image's order.
	Env []string
	// WorkingDir is the directory the process starts in ("": the root).
	WorkingDir string
	// User is who the process runs as: a name or uid, with an optional
	// :group or :gid ("": root).
	User string
}

// IsZero reports whether im holds nothing.
func (im *Image) IsZero() bool {
	return len(im.Entrypoint) == 0 && len(im.Cmd) == 0 && len(im.Env) == 0 && im.WorkingDir == "" && im.User == ""
}

// wireImage decodes the "image" member of a document.
type wireImage struct {
	Cmd        []string `json:"cmd"`
	Entrypoint []string `json:"entrypoint"`
	Env        []string `json:"env"`
	User       string   `json:"user"`
	WorkingDir string   `json:"working_dir"`
}

// encodeImage writes the canonical "image" object: members sorted by name,
// each omitted when empty.
func encodeImage(b *bytes.Buffer, im *Image) {
	b.WriteByte('{')
	first := true
	member := func(name string) {
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.WriteByte('"')
		b.WriteString(name)
		b.WriteString(`":`)
	}
	list := func(name string, l []string) {
		if len(l) == 0 {
			return
		}
		member(name)
		b.WriteByte('[')
		for i, s := range l {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, s)
		}
		b.WriteByte(']')
	}
	list("cmd", im.Cmd)
	list("entrypoint", im.Entrypoint)
	list("env", im.Env)
	if im.User != "" {
		member("user")
		writeString(b, im.User)
	}
	if im.WorkingDir != "" {
		member("working_dir")
		writeString(b, im.WorkingDir)
	}
	b.WriteByte('}')
}

// Validate checks the image metadata's rules (docs/flist.md): bounded
// lists and strings, valid UTF-8 without NUL, Env entries KEY=VALUE with a
// non-empty KEY. Errors wrap ErrInvalid.
func (im *Image) Validate() error {
	total := 0
	checkString := func(what, s string) error {
		total += len(s)
		switch {
		case len(s) > MaxImageString:
			return fmt.Errorf("%w: image %s is %d bytes, limit %d", ErrInvalid, what, len(s), MaxImageString)
		case !utf8.ValidString(s):
			return fmt.Errorf("%w: image %s %q is not valid UTF-8", ErrInvalid, what, truncate(s))
		case strings.IndexByte(s, 0) >= 0:
			// A NUL ends a C string: an argument or variable holding one
			// cannot be passed to a process.
			return fmt.Errorf("%w: image %s %q holds a NUL character", ErrInvalid, what, truncate(s))
		}
		return nil
	}
	checkList := func(name string, l []string) error {
		if len(l) > MaxImageList {
			return fmt.Errorf("%w: image %s has %d entries, limit %d", ErrInvalid, name, len(l), MaxImageList)
		}
		for i, s := range l {
			if err := checkString(fmt.Sprintf("%s[%d]", name, i), s); err != nil {
				return err
			}
		}
		return nil
	}
	for _, l := range []struct {
		name string
		list []string
	}{{"entrypoint", im.Entrypoint}, {"cmd", im.Cmd}, {"env", im.Env}} {
		if err := checkList(l.name, l.list); err != nil {
			return err
		}
	}
	for i, kv := range im.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return fmt.Errorf("%w: image env[%d] %q: want KEY=VALUE", ErrInvalid, i, truncate(kv))
		}
	}
	if err := checkString("working_dir", im.WorkingDir); err != nil {
		return err
	}
	if err := checkString("user", im.User); err != nil {
		return err
	}
	if total > MaxImageSize {
		return fmt.Errorf("%w: image metadata holds %d bytes of strings, limit %d", ErrInvalid, total, MaxImageSize)
	}
	return nil
}
