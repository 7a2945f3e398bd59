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
	q, err := qmpDial(ctx, socket)
	if err != nil {
		return err
	}
	defer q.close()
	return q.run(command, nil, out)
}

// qmpConn is a QMP session: capabilities negotiated, then commands one
// after the other until ctx's deadline.
type qmpConn struct {
	conn net.Conn
	r    *bufio.Reader
}

// qmpDial opens a session on socket.
func qmpDial(ctx context.Context, socket string) (*qmpConn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, fmt.Errorf("vmd: %w: qmp: %w", ErrHypervisor, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	q := &qmpConn{conn: conn, r: bufio.NewReader(conn)}
	// The greeting, then capabilities negotiation.
	if _, err := qmpReply(q.r, true); err != nil {
		conn.Close()
		return nil, err
	}
	if err := q.run("qmp_capabilities", nil, nil); err != nil {
		conn.Close()
		return nil, err
	}
	return q, nil
}

func (q *qmpConn) close() { q.conn.Close() }

// run runs command with args (nil: none) and decodes its return value
// into out (nil: ignored).
func (q *qmpConn) run(command string, args, out any) error {
	msg := map[string]any{"execute": command}
	if args != nil {
		msg["arguments"] = args
	}
	if err := json.NewEncoder(q.conn).Encode(msg); err != nil {
		return fmt.Errorf("vmd: %w: qmp %s: %w", ErrHypervisor, command, err)
	}
	ret, err := qmpReply(q.r, false)
	if err != nil {
		return fmt.Errorf("vmd: qmp %s: %w", command, err)
	}
	if out != nil {
		if err := json.Unmarshal(ret, out); err != nil {
			return fmt.Errorf("vmd: %w: qmp %s: %w", ErrHypervisor, command, err)
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
