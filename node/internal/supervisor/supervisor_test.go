package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grid4/grid4/node/internal/clock"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// journal records what the children did, in order.
type journal struct {
	mu sync.Mutex
	l  []string
}

func (j *journal) add(s string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.l = append(j.l, s)
}

func (j *journal) list() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.l)
}

// steady runs until stopped.
func steady(j *journal, name string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		j.add("start " + name)
		<-ctx.Done()
		j.add("stop " + name)
		return nil
	}
}

func run(t *testing.T, s *Supervisor) (cancel func() error) {
	t.Helper()
	ctx, c := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() {
			c()
			err = <-done
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func statusOf(s *Supervisor, name string) Status {
	st, _ := s.Statuses(context.Background())
	for _, x := range st {
		if x.Name == name {
			return x
		}
	}
	return Status{}
}

// TestOrder: children start in order (waiting for Ready) and stop in
// reverse order.
func TestOrder(t *testing.T) {
	j := &journal{}
	specs := []Spec{
		{Name: "redis", Start: Func(steady(j, "redis")), Ready: func(context.Context) error {
			// Like a ping: ready once it runs.
			waitFor(t, "redis", func() bool { return slices.Contains(j.list(), "start redis") })
			j.add("ready redis")
			return nil
		}},
		{Name: "a", Start: Func(steady(j, "a"))},
		{Name: "b", Start: Func(steady(j, "b"))},
	}
	s := New(Config{}, specs, nil, nil)
	stop := run(t, s)
	waitFor(t, "all running", func() bool { return statusOf(s, "b").State == Running })
	waitFor(t, "starts", func() bool { return len(j.list()) == 4 })
	if got := j.list(); got[0] != "start redis" || got[1] != "ready redis" {
		t.Errorf("start order: %v", got)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	got := j.list()[4:]
	if !slices.Equal(got, []string{"stop b", "stop a", "stop redis"}) {
		t.Errorf("stop order: %v", got)
	}
	if st := statusOf(s, "a"); st.State != Stopped {
		t.Errorf("status after stop: %+v", st)
	}
}

// TestRestart: Restart stops the named children in reverse order and
// starts them again in order, leaves the others alone, does not count as
// a death, and starts at once a child that was waiting for its restart
// (whose pending restart is then dropped).
func TestRestart(t *testing.T) {
	j := &journal{}
	c := clock.NewFake(t0)
	crash := make(chan struct{}, 1)
	flaky := func(ctx context.Context) error {
		j.add("start c")
		select {
		case <-crash:
			return errors.New("boom")
		case <-ctx.Done():
			j.add("stop c")
			return nil
		}
	}
	specs := []Spec{
		{Name: "a", Start: Func(steady(j, "a"))},
		{Name: "b", Start: Func(steady(j, "b"))},
		{Name: "c", Start: Func(flaky)},
	}
	s := New(Config{RestartMin: time.Minute}, specs, c, nil)
	run(t, s)
	waitFor(t, "all running", func() bool { return statusOf(s, "c").State == Running && len(j.list()) == 3 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	if err := s.Restart(ctx, "nope"); !errors.Is(err, ErrUnknownProcess) {
		t.Fatalf("Restart of an unknown name: %v", err)
	}
	if err := s.Restart(ctx, "b", "c"); err != nil {
		t.Fatal(err)
	}
	// Goroutine children write their start entry when they get to run:
	// the stop order is exact, the starts may come in any order.
	waitFor(t, "b and c started again", func() bool { return len(j.list()) == 7 })
	got := j.list()[3:]
	if !slices.Equal(got[:2], []string{"stop c", "stop b"}) || !sameSet(got[2:], "start b", "start c") {
		t.Errorf("restart of b and c: %v", got)
	}
	if st := statusOf(s, "b"); st.State != Running || st.Restarts != 0 {
		t.Errorf("b after a restart: %+v", st)
	}

	// c dies: it waits a minute for its restart; Restart starts it now.
	crash <- struct{}{}
	waitFor(t, "c restarting", func() bool { return statusOf(s, "c").State == Restarting })
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "everything started again", func() bool { return len(j.list()) == 12 })
	got = j.list()[7:]
	if !slices.Equal(got[:2], []string{"stop b", "stop a"}) || !sameSet(got[2:], "start a", "start b", "start c") {
		t.Errorf("restart of everything: %v", got)
	}
	// The minute passes: the stale restart does not start c twice.
	c.Advance(2 * time.Minute)
	time.Sleep(20 * time.Millisecond)
	if n := len(j.list()); n != 12 {
		t.Errorf("after the stale restart time: %v", j.list())
	}
	if st := statusOf(s, "c"); st.State != Running || st.Restarts != 0 {
		t.Errorf("c: %+v", st)
	}
}

func sameSet(got []string, want ...string) bool {
	g := slices.Clone(got)
	slices.Sort(g)
	slices.Sort(want)
	return slices.Equal(g, want)
}

// TestRestartBackoff: a child that keeps dying is restarted after 1s, 2s,
// 4s, ... up to RestartMax, on the clock; once it has run StableAfter the
// backoff starts over.
func TestRestartBackoff(t *testing.T) {
	c := clock.NewFake(t0)
	var mu sync.Mutex
	var starts []time.Duration
	crash := make(chan struct{}, 1)
	flaky := func(ctx context.Context) error {
		mu.Lock()
		starts = append(starts, c.Now().Sub(t0))
		mu.Unlock()
		select {
		case <-crash:
			return errors.New("boom")
		case <-ctx.Done():
			return nil
		}
	}
	s := New(Config{RestartMin: time.Second, RestartMax: 8 * time.Second, StableAfter: time.Minute}, []Spec{{Name: "flaky", Start: Func(flaky)}}, c, nil)
	run(t, s)
	die := func() {
		crash <- struct{}{}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.WaitTimers(ctx, 1); err != nil {
			t.Fatal(err)
		}
		c.AdvanceToNext()
		waitFor(t, "restart", func() bool { return statusOf(s, "flaky").State == Running })
	}
	waitFor(t, "first start", func() bool { return statusOf(s, "flaky").State == Running })
	for range 5 {
		die()
	}
	st := statusOf(s, "flaky")
	if st.Restarts != 5 || st.LastExit != "boom" {
		t.Errorf("status: %+v", st)
	}
	c.Advance(time.Minute) // runs long enough to count as stable
	die()
	mu.Lock()
	defer mu.Unlock()
	want := []time.Duration{0, 1, 3, 7, 15, 23, 84}
	for i := range want {
		want[i] *= time.Second
	}
	if !slices.Equal(starts, want) {
		t.Errorf("starts at %v, want %v", starts, want)
	}
}

// TestFatalStopsEverything: a child failing with ErrFatal is not
// restarted; the others are stopped and Run says why.
func TestFatalStopsEverything(t *testing.T) {
	j := &journal{}
	specs := []Spec{
		{Name: "a", Start: Func(steady(j, "a"))},
		{Name: "identityd", Start: Func(func(context.Context) error {
			return fmt.Errorf("%w: identity file is corrupt", ErrFatal)
		})},
	}
	s := New(Config{}, specs, nil, nil)
	err := s.Run(context.Background())
	var fe *FatalError
	if !errors.As(err, &fe) || fe.Name != "identityd" || !errors.Is(err, ErrFatal) || !strings.Contains(err.Error(), "identity file is corrupt") {
		t.Fatalf("Run: %v", err)
	}
	if got := j.list(); !slices.Equal(got, []string{"start a", "stop a"}) {
		t.Errorf("journal: %v", got)
	}
	if st := statusOf(s, "identityd"); st.State != Failed {
		t.Errorf("status: %+v", st)
	}
}

// TestPanicIsRestarted: a panicking goroutine child is an exit like any
// other.
func TestPanicIsRestarted(t *testing.T) {
	var calls int
	var mu sync.Mutex
	s := New(Config{RestartMin: time.Millisecond}, []Spec{{Name: "p", Start: Func(func(ctx context.Context) error {
		mu.Lock()
		calls++
		first := calls == 1
		mu.Unlock()
		if first {
			panic("bad")
		}
		<-ctx.Done()
		return nil
	})}}, nil, nil)
	run(t, s)
	waitFor(t, "restart after panic", func() bool {
		st := statusOf(s, "p")
		return st.Restarts == 1 && st.State == Running && strings.Contains(st.LastExit, "panic: bad")
	})
}

// The helper process: the test binary re-executed with SUPERVISOR_HELPER.
func TestMain(m *testing.M) {
	switch os.Getenv("SUPERVISOR_HELPER") {
	case "":
		os.Exit(m.Run())
	case "fatal":
		fmt.Fprintln(os.Stderr, "starting")
		fmt.Fprintln(os.Stderr, "identity: the seed file is corrupt")
		os.Exit(ExitFatal)
	case "fail":
		fmt.Fprint(os.Stderr, "no newline at the end")
		os.Exit(1)
	case "lifeline":
		ctx, cancel := WatchLifeline(context.Background(), os.Getenv)
		defer cancel()
		<-ctx.Done()
		fmt.Println("lifeline cut")
		os.Exit(0)
	}
	os.Exit(99)
}

func helper(mode string) Exec {
	return Exec{Path: os.Args[0], Env: append(os.Environ(), "SUPERVISOR_HELPER="+mode), Stderr: &strings.Builder{}}
}

func TestExecExitReasons(t *testing.T) {
	p, err := helper("fatal").Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); !errors.Is(err, ErrFatal) || !strings.HasSuffix(err.Error(), "identity: the seed file is corrupt") {
		t.Errorf("fatal: %v", err)
	}
	p, _ = helper("fail").Start(context.Background())
	if err := p.Wait(); err == nil || errors.Is(err, ErrFatal) || !strings.Contains(err.Error(), "exit status 1: no newline at the end") {
		t.Errorf("fail: %v", err)
	}
}

// TestLifeline: a child with a lifeline stops when the supervisor's end
// of the pipe closes (as when the supervisor dies).
func TestLifeline(t *testing.T) {
	e := helper("lifeline")
	e.Lifeline = true
	var out strings.Builder
	e.Stderr = &out
	p, err := e.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Wait() }()
	select {
	case err := <-done:
		t.Fatalf("exited early: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	p.(*execProcess).lifeline.Close()
	select {
	case err := <-done:
		if err != nil || !strings.Contains(out.String(), "lifeline cut") {
			t.Errorf("exit: %v, output %q", err, out.String())
		}
	case <-time.After(10 * time.Second):
		p.Kill()
		t.Fatal("the child did not notice its lifeline was cut")
	}
}

// TestExecStop: Stop sends SIGTERM.
func TestExecStop(t *testing.T) {
	e := Exec{Path: "sleep", Args: []string{"30"}}
	p, err := e.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if p.PID() == 0 {
		t.Error("no pid")
	}
	p.Stop()
	if err := p.Wait(); err == nil || !strings.Contains(err.Error(), "terminated") {
		t.Errorf("Wait after Stop: %v", err)
	}
}
