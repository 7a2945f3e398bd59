package vmd

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"time"
)

// qmpRun runs one QMP command on QEMU's control socket and decodes its
// return value into out (nil: ignored). QEMU serves one client at a time;
// callers hold the machine's lock.
func qmpRun(ctx context.Context, socket, command string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return fmt.Errorf("vmd: %w: qmp: %w", ErrHypervisor, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	r := bufio.NewReader(conn)
	// The greeting, then capabilities negotiation, then the command.
	if _, err := qmpReply(r, true); err != nil {
		return err
	}
	for _, cmd := range []string{"qmp_capabilities", command} {
		if err := json.NewEncoder(conn).Encode(map[string]string{"execute": cmd}); err != nil {
			return fmt.Errorf("vmd: %w: qmp %s: %w", ErrHypervisor, cmd, err)
		}
		ret, err := qmpReply(r, false)
		if err != nil {
			return fmt.Errorf("vmd: qmp %s: %w", cmd, err)
		}
		if cmd == command && out != nil {
			if err := json.Unmarshal(ret, out); err != nil {
				return fmt.Errorf("vmd: %w: qmp %s: %w", ErrHypervisor, cmd, err)
			}
		}
	}
	return nil
}

// qmpReply reads messages until the greeting (greeting true) or a reply,
// skipping events, and returns the reply's "return".
func qmpReply(r *bufio.Reader, greeting bool) (json.RawMessage, error) {
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return nil, fmt.Errorf("%w: qmp: %w", ErrHypervisor, err)
		}
		var m struct {
			QMP    json.RawMessage `json:"QMP"`
			Return json.RawMessage `json:"return"`
			Error  *struct {
				Class string `json:"class"`
				Desc  string `json:"desc"`
			} `json:"error"`
		}
		if err := json.Unmarshal(line, &m); err != nil {
			return nil, fmt.Errorf("%w: qmp: %w", ErrHypervisor, err)
		}
		switch {
		case greeting && m.QMP != nil:
			return nil, nil
		case m.Error != nil:
			return nil, fmt.Errorf("%w: %s: %s", ErrHypervisor, m.Error.Class, m.Error.Desc)
		case !greeting && m.Return != nil:
			return m.Return, nil
		}
	}
}
