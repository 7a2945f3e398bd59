package registrar

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/grid4/grid4/internal/logflag"
	"github.com/grid4/grid4/store/storetest"
)

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestAccessLog: one record per request at info with what was asked, what
// was answered and who signed; health checks only at debug.
func TestAccessLog(t *testing.T) {
	h := newHarness(t, storetest.SQLite, nil)
	var out syncBuffer
	srv, err := New(h.cfg, Deps{Store: h.db, Logger: logflag.New(&out, slog.LevelInfo, "text"), Now: h.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	h.ts = newTestServer(t, srv)
	tw := h.newTwin()
	node := h.newNode(tw, h.newFarm(h.newTwin()))
	h.uptime(tw, node, 100).want(t, http.StatusCreated)
	h.do("GET", "/healthz", nil, nil).want(t, http.StatusOK)
	h.do("GET", "/api/v1/nope", nil, nil).want(t, http.StatusNotFound)

	log := out.String()
	uptime := regexp.MustCompile(fmt.Sprintf(`(?m)^time=\S+ level=INFO msg=request method=POST path=/api/v1/nodes/%d/uptime `+
		`route="POST /nodes/\{node_id\}/uptime" status=201 bytes=\d+ duration=\S+ remote=127\.0\.0\.1 twin=%d$`, node, tw.id))
	if !uptime.MatchString(log) {
		t.Errorf("no access record of the uptime report in:\n%s", log)
	}
	if !strings.Contains(log, `msg=request method=GET path=/api/v1/nope route=unmatched status=404 `) {
		t.Errorf("no access record of the unmatched request in:\n%s", log)
	}
	if strings.Contains(log, "/healthz") {
		t.Errorf("health check logged at info:\n%s", log)
	}
}
