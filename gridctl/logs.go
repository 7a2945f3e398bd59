package gridctl

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/grid4/grid4/internal/websocket"
)

func newLogsCommand(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "logs",
		Short: "Receive machines' console logs (zlogs)",
		Args:  noArgs,
		RunE:  showHelp,
	}
	cmd.AddCommand(newLogsListenCommand(env))
	return cmd
}

func newLogsListenCommand(env Env) *cobra.Command {
	var withPath bool
	cmd := &cobra.Command{
		Use:   "listen ADDRESS",
		Short: "Print the log lines zlogs workloads stream to this address",
		Long: `Listen for WebSocket connections on ADDRESS (host:port) and print every
message received, one line each, as zlogs workloads send their machine's
console: give a zlogs workload the output ws://ADDRESS/NAME (any path; with
--with-path each line starts with it, to tell several machines apart). It
runs until interrupted. The node connects to this address: it must be one
the node can reach.`,
		Example: `  gridctl logs listen 0.0.0.0:8099
  # in the deployment: {"type": "zlogs", "data": {"zmachine": "vm", "output": "ws://MY-ADDRESS:8099/vm"}}`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ln, err := net.Listen("tcp", args[0])
			if err != nil {
				return fmt.Errorf("listen: %w", err)
			}
			fmt.Fprintf(env.Stderr, "listening on ws://%s/ (a zlogs output; Ctrl-C to stop)\n", ln.Addr())
			return serveLogs(cmd.Context(), ln, env, withPath)
		},
	}
	cmd.Flags().BoolVar(&withPath, "with-path", false, "start each line with the path the stream connected to")
	return cmd
}

// serveLogs prints the messages of every WebSocket connection on ln until
// ctx ends.
func serveLogs(ctx context.Context, ln net.Listener, env Env, withPath bool) error {
	var mu sync.Mutex // one line at a time on stdout
	srv := &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := websocket.Accept(w, r)
			if err != nil {
				return // Accept answered 400
			}
			defer c.Close()
			for {
				m, err := c.ReadMessage()
				if err != nil {
					if !errors.Is(err, websocket.ErrClosed) {
						fmt.Fprintf(env.Stderr, "%s: stream ended: %v\n", r.URL.Path, err)
					}
					return
				}
				mu.Lock()
				if withPath {
					fmt.Fprintf(env.Stdout, "%s %s\n", r.URL.Path, m)
				} else {
					fmt.Fprintf(env.Stdout, "%s\n", m)
				}
				mu.Unlock()
			}
		}),
	}
	go func() {
		<-ctx.Done()
		srv.Close() // hijacked connections are ours: they end with the process
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
