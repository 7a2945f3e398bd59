package explorer_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/grid4/grid4/store/storetest"
)

// FuzzQuery sends any query string to the pages that read one: the
// answer is a page or a 400 (or a search's redirect), never a failure,
// and what was sent never becomes markup (a script).
func FuzzQuery(f *testing.F) {
	for _, s := range []string{"farm=1&online=true", "country=%3Cb%3E&version=v4", "after=9223372036854775807&size=100",
		"q=alpha", "q=%ff", "days=90", "page=0", "healthy=maybe", "approved=1&approved=x", "country=" + strings.Repeat("é", 70)} {
		f.Add("/nodes", s)
	}
	f.Add("/search", "q=<script>")
	f.Add("/farms", "name=a%00")
	f.Add("/nodes/1", "days=0")
	f.Add("/versions", "page=99999999999999999999")
	g := newGrid(f, storetest.SQLite)
	f.Fuzz(func(t *testing.T, path, query string) {
		switch path {
		case "/", "/nodes", "/farms", "/versions", "/search", "/nodes/1", "/farms/1":
		default:
			return
		}
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		status, h, body := g.get(t, path+"?"+q.Encode())
		switch status {
		case http.StatusOK, http.StatusBadRequest:
		case http.StatusFound:
			if path != "/search" {
				t.Fatalf("%s?%s: redirected to %s", path, query, h.Get("Location"))
			}
		default:
			t.Fatalf("%s?%s: %d\n%s", path, query, status, body)
		}
		// The explorer's pages have no script: one in the page came
		// from the query.
		if strings.Contains(strings.ToLower(body), "<script") {
			t.Fatalf("%s?%s: the page holds a script:\n%s", path, query, body)
		}
	})
}
