package registrar

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/grid4/grid4/registrar/api"
)

// checkValidation runs a table of (input, ok) cases through fn and checks
// that every refusal is a 400 naming field.
func checkValidation(t *testing.T, field string, fn func(string) error, cases map[string]bool) {
	t.Helper()
	for in, ok := range cases {
		err := fn(in)
		if ok && err != nil {
			t.Errorf("%s %q refused: %v", field, in, err)
		}
		if !ok {
			if err == nil {
				t.Errorf("%s %q accepted", field, in)
				continue
			}
			he, isHTTP := asHTTPError(err)
			if !isHTTP || he.status != http.StatusBadRequest || !strings.Contains(he.msg, field) {
				t.Errorf("%s %q: want a 400 naming the field, got %v", field, in, err)
			}
		}
	}
}

func TestValidateStellarAddress(t *testing.T) {
	checkValidation(t, "stellar_address", func(s string) error { return validateStellarAddress("stellar_address", s) }, map[string]bool{
		// Valid account ids (checked independently with another CRC16 implementation).
		"GA7QYNF7SOWQ3GLR2BGMZEHXAVIRZA4KVWLTJJFC7MGXUA74P7UJVSGZ": true,
		"GAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAWHF": true,
		"GCEZWKCA5VLDNRLN3RPRJMRZOX3Z6G5CHCGSNFHEYVXM3XOJMDS674JZ": true,
		// One character changed: the checksum catches it.
		"GA7QYNF7SOWQ3GLR2BGMZEHXAVIRZA4KVWLTJJFC7MGXUA74P7UJVSGA": false,
		"GA7QYNF7SOWQ3GLR2BGMZEHXAVIRZA4KVWLTJJFC7MGXUA74P7UJVSHZ": false,
		"GB7QYNF7SOWQ3GLR2BGMZEHXAVIRZA4KVWLTJJFC7MGXUA74P7UJVSGZ": false,
		// Lower case, wrong length, wrong alphabet, wrong version (a secret seed "S...").
		"ga7qynf7sowq3glr2bgmzehxavirza4kvwltjjfc7mgxua74p7ujvsgz":                 false,
		"GA7QYNF7SOWQ3GLR2BGMZEHXAVIRZA4KVWLTJJFC7MGXUA74P7UJVSG":                  false,
		"GA7QYNF7SOWQ3GLR2BGMZEHXAVIRZA4KVWLTJJFC7MGXUA74P7UJVSG1":                 false,
		"SAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAWHF":                 false,
		"MA7QYNF7SOWQ3GLR2BGMZEHXAVIRZA4KVWLTJJFC7MGXUA74P7UJVSGZAAAAAAAAAAAAAAAA": false,
		"":         false,
		"GABC":     false,
		"not even": false,
	})
}

func TestCRC16XModem(t *testing.T) {
	// The standard check value of CRC-16/XMODEM.
	if got := crc16XModem([]byte("123456789")); got != 0x31C3 {
		t.Fatalf("crc16XModem(123456789) = %#x, want 0x31c3", got)
	}
}

func TestValidateIP(t *testing.T) {
	checkValidation(t, "ip", func(s string) error { return validateIP("ip", s) }, map[string]bool{
		"10.0.0.1":       true,
		"10.0.0.1/24":    true,
		"2001:db8::1":    true,
		"2001:db8::1/64": true,
		"fe80::1%eth0":   true,
		"::ffff:1.2.3.4": true,
		"10.0.0.256":     false,
		"10.0.0.1/33":    false,
		"10.0.0":         false,
		"example.com":    false,
		"":               false,
		"10.0.0.1/":      false,
		" 10.0.0.1":      false,
	})
}

func TestValidateMAC(t *testing.T) {
	checkValidation(t, "mac", func(s string) error { return validateMAC("mac", s) }, map[string]bool{
		"52:54:00:12:34:56":       true,
		"52-54-00-12-34-56":       true,
		"5254.0012.3456":          true,
		"02:00:5e:10:00:00:00:01": true,
		"52:54:00:12:34":          false,
		"zz:54:00:12:34:56":       false,
		"":                        false,
		"525400123456":            true, // bare hex (net.ParseMAC accepts it)
		"52540012345":             false,
	})
}

func TestValidateCoordinates(t *testing.T) {
	lat := func(s string) error { return validateCoordinate("latitude", s, 90) }
	checkValidation(t, "latitude", lat, map[string]bool{
		"":           true,
		"0":          true,
		"51.0543":    true,
		"-90":        true,
		"90":         true,
		"1e-05":      true, // fmt.Sprint(0.00001)
		"90.0001":    false,
		"-91":        false,
		"NaN":        false,
		"Inf":        false,
		"0x1p-2":     false,
		"12,5":       false,
		"north":      false,
		"1e400":      false,
		"1.2.3":      false,
		"          ": false,
	})
	lon := func(s string) error { return validateCoordinate("longitude", s, 180) }
	checkValidation(t, "longitude", lon, map[string]bool{
		"180":    true,
		"-179.9": true,
		"180.01": false,
		"-181":   false,
	})
}

func TestValidateFarmName(t *testing.T) {
	checkValidation(t, "farm_name", func(s string) error { return validateFarmName("farm_name", s) }, map[string]bool{
		"freefarm":              true,
		"Farm42":                true,
		strings.Repeat("a", 40): true,
		strings.Repeat("a", 41): false,
		"":                      false,
		"my farm":               false,
		"farm-1":                false,
		"färm":                  false,
		"farm\n":                false,
	})
}

func TestValidateVersion(t *testing.T) {
	checkValidation(t, "version", func(s string) error { return validateVersion("version", s, true) }, map[string]bool{
		"v4.1.2":                            true,
		"4.1.2":                             true,
		"v0.0.0":                            true,
		"v4.1.2-rc1":                        true,
		"v4.1.2-rc.1.x-y":                   true,
		"v4.1":                              false,
		"v04.1.2":                           false,
		"v4.1.2+build":                      false,
		"v4.1.2-":                           false,
		"V4.1.2":                            false,
		"":                                  false,
		"v4.1.2 ":                           false,
		"v4.1.2-" + strings.Repeat("a", 60): false,
	})
}

func TestValidateText(t *testing.T) {
	country := func(s string) error { return validateText("location.country", s, maxCountryLen, false) }
	checkValidation(t, "location.country", country, map[string]bool{
		"":                        true,
		"Belgium":                 true,
		"Côte d'Ivoire":           true,
		strings.Repeat("é", 64):   true,
		strings.Repeat("é", 65):   false,
		"Bel\x00gium":             false,
		"Bel\u202egium":           false,
		"Bel\u2066gium\u2069":     false,
		"Belgium\u200f":           false,
		"Bel\u061cgium":           false,
		"Bel\u200bgium":           false,
		"Bel\u200cgium":           false,
		"Bel\u200dgium":           false,
		"Bel\u2060gium":           false,
		"\ufeffBelgium":           false,
		"België 🇧🇪":               true,
		"Bel\tgium":               false,
		string([]byte{0xff, 'a'}): false,
	})
	serial := func(s string) error { return validateText("serial_number", s, maxSerialLen, false) }
	checkValidation(t, "serial_number", serial, map[string]bool{
		"ABC123":                 true,
		"":                       true,
		"SN\n1":                  false,
		strings.Repeat("x", 129): false,
	})
}

func TestValidateRelays(t *testing.T) {
	cases := map[string]bool{
		"relay.grid.tf":       true,
		"relay.grid.tf:8080":  true,
		"10.0.0.1":            true,
		"[2001:db8::1]:443":   true,
		"relay.grid.tf.":      true,
		"-bad.example":        false,
		"bad_host.example":    false,
		"relay.grid.tf:0":     false,
		"relay.grid.tf:99999": false,
		"":                    false,
		"a..b":                false,
	}
	checkValidation(t, "relays[0]", func(s string) error { return validateRelays([]string{s}) }, cases)
	if err := validateRelays(make([]string, maxRelays+1)); err == nil {
		t.Error("too many relays accepted")
	}
	checkValidation(t, "rmb_enc_key", validateRMBEncKey, map[string]bool{
		"":                       true,
		"0x02abcdef":             true,
		"has space":              false,
		strings.Repeat("k", 257): false,
	})
}

func TestValidateNode(t *testing.T) {
	good := api.RegisterNodeRequest{
		FarmID:       1,
		Resources:    api.Resources{CRU: 8, MRU: 32 << 30, SRU: 1 << 40, HRU: 8 << 40},
		Location:     api.Location{Country: "Egypt", City: "Cairo", Latitude: "30.0444", Longitude: "31.2357"},
		Interfaces:   []api.Interface{{Name: "zos", Mac: "52:54:00:12:34:56", IPs: api.IPList{"10.0.0.2", "fe80::1/64"}}},
		SerialNumber: "S1",
	}
	if err := validateNode(good); err != nil {
		t.Fatalf("good node refused: %v", err)
	}
	for field, mutate := range map[string]func(n *api.RegisterNodeRequest){
		"farm_id":              func(n *api.RegisterNodeRequest) { n.FarmID = 0 },
		"resources.mru":        func(n *api.RegisterNodeRequest) { n.Resources.MRU = maxMRU + 1 },
		"resources.sru":        func(n *api.RegisterNodeRequest) { n.Resources.SRU = maxSRU + 1 },
		"resources.hru":        func(n *api.RegisterNodeRequest) { n.Resources.HRU = maxHRU + 1 },
		"resources.cru":        func(n *api.RegisterNodeRequest) { n.Resources.CRU = maxCRU + 1 },
		"location.city":        func(n *api.RegisterNodeRequest) { n.Location.City = strings.Repeat("c", maxCityLen+1) },
		"interfaces":           func(n *api.RegisterNodeRequest) { n.Interfaces = make([]api.Interface, maxInterfaces+1) },
		"interfaces[0].name":   func(n *api.RegisterNodeRequest) { n.Interfaces[0].Name = "eth 0" },
		"interfaces[0].ips":    func(n *api.RegisterNodeRequest) { n.Interfaces[0].IPs = make(api.IPList, maxIPsPerInterface+1) },
		"interfaces[0].ips[0]": func(n *api.RegisterNodeRequest) { n.Interfaces[0].IPs = api.IPList{"1.2.3.4.5"} },
		"serial_number":        func(n *api.RegisterNodeRequest) { n.SerialNumber = strings.Repeat("s", maxSerialLen+1) },
		"zos_version":          func(n *api.RegisterNodeRequest) { n.ZosVersion = "latest" },
	} {
		n := good
		n.Interfaces = []api.Interface{good.Interfaces[0]}
		mutate(&n)
		err := validateNode(n)
		he, ok := asHTTPError(err)
		if !ok || he.status != http.StatusBadRequest || !strings.Contains(he.msg, field) {
			t.Errorf("%s: want a 400 naming it, got %v", field, err)
		}
	}
}

func TestNormalizeTestFarms(t *testing.T) {
	got, err := normalizeTestFarms([]uint64{9, 2, 9, 5})
	if err != nil || len(got) != 3 || got[0] != 2 || got[1] != 5 || got[2] != 9 {
		t.Fatalf("normalize: %v %v", got, err)
	}
	if got, err := normalizeTestFarms(nil); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("nil: %v %v", got, err)
	}
	if _, err := normalizeTestFarms([]uint64{0}); err == nil {
		t.Error("farm 0 accepted")
	}
	if _, err := normalizeTestFarms(make([]uint64, maxTestFarms+1)); err == nil {
		t.Error("too many test farms accepted")
	}
}

func TestParsePageAndIDs(t *testing.T) {
	for q, ok := range map[string]bool{
		"":                true,
		"page=3&size=100": true,
		"size=101":        false,
		"size=0":          false,
		"page=0":          false,
		"page=-1":         false,
		"page=x":          false,
		"size=1e2":        false,
	} {
		vals, _ := url.ParseQuery(q)
		_, err := parsePage(vals)
		if (err == nil) != ok {
			t.Errorf("parsePage(%q): %v", q, err)
		}
	}
	for s, ok := range map[string]bool{"1": true, "9223372036854775807": true, "9223372036854775808": false, "18446744073709551615": false,
		"0": false, "-1": false, "+1": false, "1.0": false, "": false, "18446744073709551616": false} {
		if _, err := parseID("node_id", s); (err == nil) != ok {
			t.Errorf("parseID(%q): %v", s, err)
		}
	}
}
