package registrar

import (
	"testing"

	"github.com/grid4/grid4/registrar/api"
)

// uptimeBodies are bodies parseUptimeReport takes and bodies it leaves to
// the general decoder.
var uptimeBodies = []string{
	`{"uptime":3600,"timestamp":1733420000}`,
	`{"timestamp":1733420000,"uptime":3600}`,
	" \t{ \"uptime\" : 0 ,\r\n \"timestamp\" : 9223372036854775807 } \n",
	`{"uptime":9223372036854775808,"timestamp":1}`,
	`{"uptime":18446744073709551616,"timestamp":1}`,
	`{"uptime":1,"uptime":2}`,
	`{"uptime":1,"timestamp":2,"uptime":3}`,
	`{"uptime":1}`,
	`{"timestamp":1}`,
	`{}`,
	`{"uptime":01,"timestamp":2}`,
	`{"uptime":1.0,"timestamp":2}`,
	`{"uptime":1e3,"timestamp":2}`,
	`{"uptime":-1,"timestamp":2}`,
	`{"uptime":1,"timestamp":-2}`,
	`{"uptime":null,"timestamp":2}`,
	`{"uptime":"1","timestamp":2}`,
	`{"Uptime":1,"timestamp":2}`,
	`{"up\u0074ime":1,"timestamp":2}`,
	`{"uptime":1,"timestamp":2}x`,
	`{"uptime":1,"timestamp":2}{}`,
	`{"uptime":1,"timestamp":2,}`,
	`{"uptime":1 "timestamp":2}`,
	`{"uptime":1,"timestamp":2`,
	`null`,
	``,
}

// TestParseUptimeReportAgreesWithDecodeJSON: whatever the fast path takes,
// the general decoder takes too, with the same values.
func TestParseUptimeReportAgreesWithDecodeJSON(t *testing.T) {
	taken := 0
	for _, body := range uptimeBodies {
		if checkUptimeBody(t, []byte(body)) {
			taken++
		}
	}
	if taken != 3 {
		t.Errorf("the fast path took %d of the bodies, want the first 3", taken)
	}
}

// FuzzParseUptimeReport is TestParseUptimeReportAgreesWithDecodeJSON
// over any text.
func FuzzParseUptimeReport(f *testing.F) {
	for _, body := range uptimeBodies {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkUptimeBody(t, body) })
}

// checkUptimeBody fails t unless the fast path's answer for body is the
// general decoder's; it reports whether the fast path took it.
func checkUptimeBody(t *testing.T, body []byte) bool {
	t.Helper()
	fast, ok := parseUptimeReport(body)
	if !ok {
		return false
	}
	var slow api.UptimeReport
	if err := decodeJSON(body, &slow); err != nil {
		t.Fatalf("%q: fast path took %+v, decodeJSON refused: %v", body, fast, err)
	}
	if fast != slow {
		t.Fatalf("%q: fast path %+v, decodeJSON %+v", body, fast, slow)
	}
	return true
}
