package provisiond

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"

	"github.com/grid4/grid4/internal/jsonhttp"
	nodeapi "github.com/grid4/grid4/node/noderpc/api"
)

// NodeRPC is where the node-to-node API listens: the noderpc module's
// stub.
type NodeRPC interface {
	Addr(ctx context.Context) (string, error)
}

// withNodeRPC serves the node-to-node API's routes (nodeapi.PathPrefix)
// by forwarding them to the noderpc module, and everything else with api:
// one listener, one published endpoint, for users and for nodes. The
// request goes as it came (path, Host, signature fields): noderpc
// verifies it. The module's address is asked once and again after a
// failure (the module restarted elsewhere).
func withNodeRPC(api http.Handler, n NodeRPC, log *slog.Logger) http.Handler {
	var mu sync.Mutex
	var addr string
	type addrKey struct{}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(&url.URL{Scheme: "http", Host: r.In.Context().Value(addrKey{}).(string)})
			r.Out.Host = r.In.Host
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			mu.Lock()
			addr = ""
			mu.Unlock()
			log.Warn("forwarding to the node-to-node API", "err", err)
			jsonhttp.Write(w, http.StatusBadGateway, map[string]string{"error": "the node-to-node API is not available"})
		},
	}
	mux := http.NewServeMux()
	mux.Handle("/", api)
	mux.HandleFunc(nodeapi.PathPrefix, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		a := addr
		mu.Unlock()
		if a == "" {
			ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
			got, err := n.Addr(ctx)
			cancel()
			if err != nil {
				log.Warn("the node-to-node API's address", "err", err)
				jsonhttp.Write(w, http.StatusServiceUnavailable, map[string]string{"error": "the node-to-node API is not available"})
				return
			}
			mu.Lock()
			addr, a = got, got
			mu.Unlock()
		}
		proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), addrKey{}, a)))
	})
	return mux
}
