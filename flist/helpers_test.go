package flist

import (
	"bytes"
	"compress/flate"
	"testing"
	"time"
)

func unixTime(s int64) time.Time { return time.Unix(s, 0) }

func deflate(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestSpeed)
	_, _ = w.Write(data)
	_ = w.Close()
	return b.Bytes()
}
