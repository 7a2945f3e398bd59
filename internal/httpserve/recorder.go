package httpserve

import "net/http"

// Recorder is an http.ResponseWriter that remembers the status and the
// size of the answer written through it, for the metrics and the log
// record of a request, and whether anything was written yet (a handler
// that failed half-way must not write a second status).
type Recorder struct {
	http.ResponseWriter
	status int
	wrote  bool
	n      int64
}

// NewRecorder records what is written to w.
func NewRecorder(w http.ResponseWriter) *Recorder { return &Recorder{ResponseWriter: w} }

// WriteHeader records the first status written.
func (w *Recorder) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write records an implicit 200 and the size.
func (w *Recorder) Write(b []byte) (int, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *Recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Status is the status written, 200 when nothing was.
func (w *Recorder) Status() int {
	if !w.wrote {
		return http.StatusOK
	}
	return w.status
}

// Wrote reports whether a status or body has been written.
func (w *Recorder) Wrote() bool { return w.wrote }

// Bytes is the size of the body written.
func (w *Recorder) Bytes() int64 { return w.n }

// Probe returns the status and headers mux would answer r with, writing
// nothing: how a server that answers unmatched requests itself (in JSON)
// learns whether the mux says 404, 405 with Allow, or a redirect.
func Probe(mux *http.ServeMux, r *http.Request) (int, http.Header) {
	p := &probe{header: http.Header{}}
	mux.ServeHTTP(p, r)
	if p.status == 0 {
		p.status = http.StatusOK
	}
	return p.status, p.header
}

// probe is the ResponseWriter of Probe.
type probe struct {
	header http.Header
	status int
}

func (p *probe) Header() http.Header { return p.header }
func (p *probe) Write(b []byte) (int, error) {
	if p.status == 0 {
		p.status = http.StatusOK
	}
	return len(b), nil
}
func (p *probe) WriteHeader(code int) {
	if p.status == 0 {
		p.status = code
	}
}
