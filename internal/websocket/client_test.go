package websocket_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/grid4/grid4/internal/websocket"
	"github.com/grid4/grid4/internal/wstest"
)

// The client against wstest, a server written apart from this package.

func TestWebSocketClient(t *testing.T) {
	srv := wstest.New(t)
	ctx := context.Background()
	c, err := websocket.Dial(ctx, srv.URL("/logs?machine=vm"), nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	// Short, 16-bit and 64-bit lengths.
	long16 := strings.Repeat("a", 300)
	long64 := strings.Repeat("b", 70000)
	for _, m := range []string{"hello", long16, long64, ""} {
		if err := c.WriteText([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	srv.Expect(t, "hello", long16, long64, "")
	select {
	case p := <-srv.Pongs:
		if p != "are you there" {
			t.Fatalf("pong %q", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no pong")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	path := srv.Paths()[0]
	if path != "/logs?machine=vm" {
		t.Fatalf("request target %q", path)
	}
}

func TestWebSocketHandshakeRefused(t *testing.T) {
	srv := wstest.New(t)
	srv.BadAccept = true
	_, err := websocket.Dial(context.Background(), srv.URL("/"), nil, "test")
	if !errors.Is(err, websocket.ErrHandshake) || !strings.Contains(err.Error(), "Sec-WebSocket-Accept") {
		t.Fatalf("bad accept: %v", err)
	}
	// A plain HTTP server refuses the upgrade.
	hs := &http.Server{Handler: http.NotFoundHandler()}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go hs.Serve(ln)
	defer hs.Close()
	_, err = websocket.Dial(context.Background(), "ws://"+ln.Addr().String()+"/", nil, "test")
	if !errors.Is(err, websocket.ErrHandshake) || !strings.Contains(err.Error(), "404") {
		t.Fatalf("404: %v", err)
	}
}
