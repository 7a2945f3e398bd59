// Package zlogs is the type manager of ZLogs workloads: it streams the log
// of a machine of the deployment, line by line, to a WebSocket endpoint
// (ws:// or wss://), one text message per line.
//
// A machine's log is the file <LogDir>/<twin>-<deployment>-<machine>.log,
// which the ZMachineLight manager fills with the machine's console. A
// stream follows the file like tail -F (it waits for the file to appear,
// and starts over when the file is truncated or replaced) and reconnects
// with backoff when the connection drops, sending again the line whose
// send failed. WebSocket has no acknowledgements: lines written into a
// connection that died before the client noticed are lost, so delivery is
// best effort. A newly provisioned stream sends the log from its start.
// A stream records how far it has sent (<LogDir>/<workload ID>.zlogs-position,
// at most once a second and whenever it has caught up), so that after a
// restart of the node it carries on from there: lines a machine wrote
// while the node was down are sent, a few lines may be sent twice. A
// resumed stream sends what is written from then on.
package zlogs

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/internal/atomicfile"
	"github.com/grid4/grid4/internal/websocket"
	"github.com/grid4/grid4/node/provisiond"
)

// userAgent is how streams introduce themselves to collectors.
const userAgent = "grid4-zlogs"

// Defaults of Config.
const (
	DefaultPoll        = 200 * time.Millisecond
	DefaultDialTimeout = 10 * time.Second
	// maxLine bounds a message: longer lines are sent in pieces.
	maxLine = 64 << 10
)

// Config configures a Manager.
type Config struct {
	// LogDir is where machine logs are. Required.
	LogDir string
	// TLS configures wss connections (nil: system roots).
	TLS *tls.Config
	// Poll is how often a stream looks for new lines (DefaultPoll).
	Poll time.Duration
	// DialTimeout bounds a connection attempt (DefaultDialTimeout).
	DialTimeout time.Duration
	// MaxBackoff caps the wait between reconnections (30 s).
	MaxBackoff time.Duration
	// Logger receives stream events (nil: discarded).
	Logger *slog.Logger
}

// Manager runs the log streams of the node.
type Manager struct {
	c      Config
	log    *slog.Logger
	mu     sync.Mutex
	active map[string]*stream
}

// New returns a manager for c. Close stops its streams.
func New(c Config) (*Manager, error) {
	if c.LogDir == "" {
		return nil, errors.New("zlogs: Config.LogDir is required")
	}
	if c.Poll <= 0 {
		c.Poll = DefaultPoll
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return &Manager{c: c, log: c.Logger, active: map[string]*stream{}}, nil
}

// Result is what a ZLogs workload reports.
type Result struct {
	// Source is the log file streamed.
	Source string `json:"source"`
	// Output is the WebSocket URL it goes to.
	Output string `json:"output"`
}

// LogFile is the log of machine in t's deployment.
func (m *Manager) LogFile(t provisiond.Task, machine string) string {
	return filepath.Join(m.c.LogDir, t.Sibling(machine)+".log")
}

// Provision checks that the target accepts a connection and starts the
// stream from the start of the log. A stream already running with the same
// settings is left alone.
func (m *Manager) Provision(ctx context.Context, t provisiond.Task) (any, error) {
	var d gridtypes.ZLogsData
	if err := t.Workload.DecodeData(&d); err != nil {
		return nil, fmt.Errorf("zlogs: %w", err)
	}
	if err := machineRunning(t, d.ZMachine); err != nil {
		return nil, err
	}
	src := m.LogFile(t, d.ZMachine)
	res := Result{Source: src, Output: d.Output}
	m.mu.Lock()
	s := m.active[t.ID()]
	m.mu.Unlock()
	if s != nil && s.output == d.Output && s.source == src {
		return res, nil
	}
	dctx, cancel := context.WithTimeout(ctx, m.c.DialTimeout)
	conn, err := websocket.Dial(dctx, d.Output, m.c.TLS, userAgent)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("zlogs: cannot connect to %s: %w", d.Output, err)
	}
	m.start(t.ID(), src, d.Output, conn, fromStart)
	return res, nil
}

// Update points the stream at the new target (or machine).
func (m *Manager) Update(ctx context.Context, t provisiond.Task) (any, error) {
	return m.Provision(ctx, t)
}

// Deprovision stops the stream and forgets how far it had sent.
func (m *Manager) Deprovision(_ context.Context, t provisiond.Task) error {
	m.stop(t.ID())
	if err := os.Remove(m.positionFile(t.ID())); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("zlogs: %w", err)
	}
	return nil
}

// positionFile records how far the stream of workload id has sent.
func (m *Manager) positionFile(id string) string {
	return filepath.Join(m.c.LogDir, id+".zlogs-position")
}

// Pause stops the stream; lines written meanwhile are not sent.
func (m *Manager) Pause(_ context.Context, t provisiond.Task) error {
	m.stop(t.ID())
	return nil
}

// Resume starts the stream again from the current end of the log.
func (m *Manager) Resume(_ context.Context, t provisiond.Task) error {
	return m.restart(t, fromEnd)
}

// Restore restarts the stream of a workload after the node restarted
// (not for a paused one) from where it had sent to. It connects in the
// background.
func (m *Manager) Restore(_ context.Context, t provisiond.Task) error {
	if t.State == gridtypes.StatePaused {
		return nil
	}
	var d gridtypes.ZLogsData
	if err := t.Workload.DecodeData(&d); err != nil {
		return fmt.Errorf("zlogs: %w", err)
	}
	if err := machineRunning(t, d.ZMachine); err != nil {
		return err
	}
	return m.restart(t, fromSaved)
}

// machineRunning fails when the machine a stream follows is not running
// (failed, deleted, lost at a restart): a stream of a log nobody writes
// would read ok and carry nothing.
func machineRunning(t provisiond.Task, machine string) error {
	r, ok := t.Siblings[machine]
	switch {
	case !ok:
		return fmt.Errorf("zlogs: machine %q has no result yet", machine)
	case r.State == gridtypes.StateOk || r.State == gridtypes.StatePaused:
		return nil
	case r.Message != "":
		return fmt.Errorf("zlogs: machine %q is in state %s: %s", machine, r.State, r.Message)
	default:
		return fmt.Errorf("zlogs: machine %q is in state %s", machine, r.State)
	}
}

func (m *Manager) restart(t provisiond.Task, from startAt) error {
	var d gridtypes.ZLogsData
	if err := t.Workload.DecodeData(&d); err != nil {
		return fmt.Errorf("zlogs: %w", err)
	}
	m.start(t.ID(), m.LogFile(t, d.ZMachine), d.Output, nil, from)
	return nil
}

// startAt is where a stream starts reading its log.
type startAt int

const (
	// fromStart: a new stream sends the whole log.
	fromStart startAt = iota
	// fromEnd: a resumed stream sends what is written from now on.
	fromEnd
	// fromSaved: a restored stream carries on from its recorded
	// position (from the start of a log that is not the one recorded).
	fromSaved
)

// Close stops every stream.
func (m *Manager) Close() {
	m.mu.Lock()
	ids := make([]string, 0, len(m.active))
	for id := range m.active {
		ids = append(ids, id)
	}
	m.mu.Unlock()
	for _, id := range ids {
		m.stop(id)
	}
}

// Streaming reports whether the stream of workload id runs.
func (m *Manager) Streaming(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.active[id] != nil
}

// stream is a running log stream.
type stream struct {
	source, output string
	cancel         context.CancelFunc
	done           chan struct{}
}

func (m *Manager) start(id, src, output string, conn *websocket.Client, from startAt) {
	m.stop(id)
	// Streams outlive the call that started them, so they get their own
	// context, ended by stop.
	ctx, cancel := context.WithCancel(context.Background())
	s := &stream{source: src, output: output, cancel: cancel, done: make(chan struct{})}
	m.mu.Lock()
	m.active[id] = s
	m.mu.Unlock()
	go func() {
		defer close(s.done)
		m.run(ctx, id, src, output, conn, from)
	}()
}

func (m *Manager) stop(id string) {
	m.mu.Lock()
	s := m.active[id]
	delete(m.active, id)
	m.mu.Unlock()
	if s != nil {
		s.cancel()
		<-s.done
	}
}

// run follows the log and sends each line, reconnecting as needed.
func (m *Manager) run(ctx context.Context, id, src, output string, conn *websocket.Client, from startAt) {
	log := m.log.With("workload", id, "output", output)
	ps := &positionSaver{path: m.positionFile(id), every: time.Second, log: log}
	tl := &tailer{path: src, poll: m.c.Poll, from: from, idle: ps.save}
	if from == fromSaved {
		tl.saved = ps.load()
	}
	defer tl.close()
	defer ps.save()
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	backoff := time.Second
	var pending []byte
	var end position // where pending ends in the log
	for {
		if pending == nil {
			line, pos, err := tl.next(ctx)
			if err != nil {
				return // ctx ended
			}
			pending, end = line, pos
		}
		for conn == nil {
			dctx, cancel := context.WithTimeout(ctx, m.c.DialTimeout)
			c, err := websocket.Dial(dctx, output, m.c.TLS, userAgent)
			cancel()
			if err == nil {
				conn, backoff = c, time.Second
				log.Info("log stream connected")
				break
			}
			log.Warn("log stream cannot connect; retrying", "error", err, "in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, m.c.MaxBackoff)
		}
		if err := conn.WriteText(pending); err != nil {
			log.Warn("log stream broke; reconnecting", "error", err)
			conn.Close()
			conn = nil
			continue
		}
		pending = nil
		ps.sent(end)
	}
}

// position is a place in a log file: its inode (a replaced file is
// another) and an offset.
type position struct {
	Ino uint64 `json:"ino"`
	Off int64  `json:"off"`
}

// positionSaver records how far a stream has sent, at most once per
// every while lines flow, and whenever it is asked to (idle, ending).
type positionSaver struct {
	path         string
	every        time.Duration
	log          *slog.Logger
	cur, written position
	last         time.Time
}

// load is the recorded position (zero when none).
func (p *positionSaver) load() position {
	b, err := os.ReadFile(p.path)
	if err != nil {
		return position{}
	}
	if err := json.Unmarshal(b, &p.written); err != nil {
		p.log.Warn("log stream position unreadable; sending the log from its start", "error", err)
		p.written = position{}
	}
	p.cur = p.written
	return p.written
}

// sent notes that the log was sent up to pos.
func (p *positionSaver) sent(pos position) {
	p.cur = pos
	if time.Since(p.last) >= p.every {
		p.save()
	}
}

// save writes the position unless it is written already.
func (p *positionSaver) save() {
	if p.cur == p.written {
		return
	}
	b, _ := json.Marshal(p.cur)
	if err := atomicfile.WriteFile(p.path, b, 0o600); err != nil {
		p.log.Warn("cannot record the log stream's position", "error", err)
		return
	}
	p.written, p.last = p.cur, time.Now()
}

// tailer reads lines from a file that grows, like tail -F.
type tailer struct {
	path string
	poll time.Duration
	from startAt
	// saved is where a fromSaved tailer starts.
	saved position
	// idle is called when the tailer has read all there is.
	idle func()

	f       *os.File
	r       *bufio.Reader
	ino     uint64
	off     int64
	partial []byte
}

func (t *tailer) close() {
	if t.f != nil {
		t.f.Close()
	}
}

// next returns the next complete line (without its newline) and where it
// ends, waiting for it; only ctx ending makes it fail.
func (t *tailer) next(ctx context.Context) ([]byte, position, error) {
	for {
		if t.f == nil {
			t.open()
		}
		if t.f != nil {
			chunk, err := t.r.ReadSlice('\n')
			t.off += int64(len(chunk))
			t.partial = append(t.partial, chunk...)
			switch {
			case err == nil:
				// A serial console ends its lines with CR LF: the line
				// is what comes before either.
				line := bytes.TrimSuffix(t.partial[:len(t.partial)-1], []byte("\r"))
				t.partial = nil
				return line, position{Ino: t.ino, Off: t.off}, nil
			case errors.Is(err, bufio.ErrBufferFull) || len(t.partial) >= maxLine:
				line := t.partial
				t.partial = nil
				return line, position{Ino: t.ino, Off: t.off}, nil
			case !errors.Is(err, io.EOF):
				t.reset()
			default:
				t.checkReplaced()
			}
		}
		if t.idle != nil {
			t.idle()
		}
		select {
		case <-ctx.Done():
			return nil, position{}, ctx.Err()
		case <-time.After(t.poll):
		}
	}
}

// open opens the file at its start, its end (a resumed stream) or the
// saved position (a restored stream, when it is the same file).
func (t *tailer) open() {
	f, err := os.Open(t.path)
	if err != nil {
		return
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return
	}
	t.f, t.ino, t.off, t.partial = f, st.Ino, 0, nil
	switch {
	case t.from == fromEnd:
		if off, err := f.Seek(0, io.SeekEnd); err == nil {
			t.off = off
		}
	case t.from == fromSaved && t.saved.Ino == st.Ino && t.saved.Off <= st.Size:
		if off, err := f.Seek(t.saved.Off, io.SeekStart); err == nil {
			t.off = off
		}
	}
	// Once the file exists, later files (after rotation) are read from
	// their start.
	t.from = fromStart
	t.r = bufio.NewReaderSize(f, maxLine)
}

func (t *tailer) reset() {
	t.close()
	t.f, t.r = nil, nil
}

// checkReplaced reopens the file when it was truncated or replaced.
func (t *tailer) checkReplaced() {
	var st syscall.Stat_t
	if err := syscall.Stat(t.path, &st); err != nil {
		return // removed: keep reading the old one until a new one appears
	}
	if st.Ino != t.ino || st.Size < t.off {
		t.reset()
	}
}
