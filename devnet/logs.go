package devnet

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"time"
)

// LogsConfig is what Logs shows.
type LogsConfig struct {
	// Dir is the devnet's directory.
	Dir string
	// Component is registrar, hub, a node's name (node2) or number (2);
	// empty: every component, each line prefixed with its name.
	Component string
	// Follow keeps writing what is appended until ctx ends.
	Follow bool
	// Out receives the lines.
	Out io.Writer
}

// Logs writes the devnet's logs.
func Logs(ctx context.Context, cfg LogsConfig) error {
	d, st, err := open(cfg.Dir)
	if err != nil {
		return err
	}
	names := st.Components()
	if cfg.Component != "" {
		name, err := st.componentNamed(cfg.Component)
		if err != nil {
			return err
		}
		names = []string{name}
	}
	tails := make([]*logTail, len(names))
	for i, name := range names {
		tails[i] = &logTail{path: d.Log(name)}
		if len(names) > 1 {
			tails[i].prefix = fmt.Sprintf("%-9s | ", name)
		}
	}
	for {
		for _, t := range tails {
			if err := t.copy(cfg.Out); err != nil {
				return err
			}
		}
		if !cfg.Follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// componentNamed resolves what a user calls a component.
func (s *State) componentNamed(name string) (string, error) {
	if i, err := strconv.Atoi(name); err == nil {
		name = "node" + strconv.Itoa(i)
	}
	for _, c := range s.Components() {
		if c == name {
			return c, nil
		}
	}
	return "", fmt.Errorf("no component %q in this devnet: registrar, hub, or node1 to node%d (or their number)", name, len(s.Nodes))
}

// logTail copies a log file's complete lines from where it stopped.
type logTail struct {
	path   string
	prefix string
	offset int64
}

func (t *logTail) copy(w io.Writer) error {
	f, err := os.Open(t.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() < t.offset {
		t.offset = 0 // the file started over
	}
	if _, err := f.Seek(t.offset, io.SeekStart); err != nil {
		return err
	}
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadBytes('\n')
		if !bytes.HasSuffix(line, []byte("\n")) {
			return nil // a line being written: next time
		}
		t.offset += int64(len(line))
		if _, werr := fmt.Fprintf(w, "%s%s", t.prefix, line); werr != nil {
			return werr
		}
		if err != nil {
			return nil
		}
	}
}
