// Package httpserve is what grid4's HTTP servers (the registrar, the hub,
// the node's zos-api-light and node-to-node API) share around their handlers: serving
// until a context ends and then shutting down gracefully, recording the
// status and size of every answer for the metrics and the request log,
// counting requests for Prometheus, and answering in JSON.
package httpserve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// NewServer returns a server of h with the limits grid4's servers share: 10
// seconds and 64 KiB for a request's headers, idle connections closed
// after 2 minutes, and readTimeout and writeTimeout for a whole request and
// its answer (the hub takes large uploads, the registrar small ones).
func NewServer(h http.Handler, readTimeout, writeTimeout time.Duration) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}

// ServeNodeAPI serves h on ln the way the node's APIs (zos-api-light, the
// node-to-node API) are served, until ctx is done: 10 seconds for a
// request's headers, idle connections closed after 2 minutes, and 10
// seconds at shutdown for the requests in flight (Serve).
func ServeNodeAPI(ctx context.Context, h http.Handler, ln net.Listener, log *slog.Logger, name string) error {
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	return Serve(ctx, hs, ln, 10*time.Second, log, name)
}

// Run listens on the TCP address addr and hands the listener to serve (a
// server's Serve, which serves until ctx is done). name starts the error
// when the address cannot be listened on ("hub: listen on :8090: ...").
func Run(ctx context.Context, addr, name string, serve func(context.Context, net.Listener) error) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("%s: listen on %s: %w", name, addr, err)
	}
	return serve(ctx, ln)
}

// Serve serves srv on ln until ctx is done, then stops accepting
// connections and waits up to timeout for the requests in flight. It
// returns nil after a clean shutdown.
//
// When srv does not set them, the requests' contexts carry ctx's values
// but not its end (a request in flight is not cancelled by the shutdown
// it is allowed to finish in), and net/http's own complaints go to log at
// warning level. name starts the errors ("registrar: serve: ...") and the
// shutdown record.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener, timeout time.Duration, log *slog.Logger, name string) error {
	if srv.BaseContext == nil {
		srv.BaseContext = func(net.Listener) context.Context { return context.WithoutCancel(ctx) }
	}
	if srv.ErrorLog == nil {
		srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("%s: serve: %w", name, err)
	case <-ctx.Done():
	}
	log.Info(name+" shutting down", "timeout", timeout.String())
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("%s: shutdown: %w", name, err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s: serve: %w", name, err)
	}
	return nil
}
