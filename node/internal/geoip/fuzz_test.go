package geoip

import (
	"testing"
)

// FuzzDecode: no answer makes decode panic, and every answer it accepts is
// a complete location that passes Validate.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"country": "Belgium", "city": "Ghent", "latitude": 51.05, "longitude": 3.72}`,
		`{"country": "AT", "loc": "48.2,16.3"}`,
		`{"status": "fail", "message": "x"}`,
		`{"error": {"title": "t"}}`,
		`{"country_code": "NZ", "lat": "-4.1e1", "lng": 174.5}`,
		`{"country": null, "lat": 1e400}`,
		`[]`, `null`, ``, "\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		loc, err := decode(body)
		if err != nil {
			return
		}
		if loc.Country == "" || loc.Latitude == "" || loc.Longitude == "" {
			t.Fatalf("decode(%q) = %+v: incomplete", body, loc)
		}
		if err := Validate(loc); err != nil {
			t.Fatalf("decode(%q) = %+v, which Validate refuses: %v", body, loc, err)
		}
	})
}
