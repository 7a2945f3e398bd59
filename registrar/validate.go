package registrar

import (
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/grid4/grid4/registrar/api"
)

// Limits of what the registrar accepts. They are generous for real machines
// and small enough that one request cannot make the registrar store or send
// much.
const (
	maxFarmNameLen     = 40
	maxCountryLen      = api.MaxCountryLen
	maxCityLen         = api.MaxCityLen
	maxCoordinateLen   = api.MaxCoordinateLen
	maxSerialLen       = 128
	maxInterfaces      = 32
	maxInterfaceName   = 32
	maxIPsPerInterface = 64
	maxIPLen           = 64
	maxRelays          = 16
	maxRelayLen        = 253
	maxRMBEncKeyLen    = 256
	maxTestFarms       = 1000
	maxApprovalNodes   = 1000
	// Resource bounds: far above any single machine sold today.
	maxCRU = 1 << 14 // 16384 logical CPUs
	maxMRU = 1 << 50 // 1 PiB of memory
	maxSRU = 1 << 56 // 64 PiB of SSD
	maxHRU = 1 << 56 // 64 PiB of HDD
	// Paging.
	defaultPageSize = 50
	maxPageSize     = 100
)

// invalid returns a 400 naming the field that was refused.
func invalid(field, format string, args ...any) *httpError {
	return badRequest(fmt.Sprintf("invalid %s: ", field) + fmt.Sprintf(format, args...))
}

// validateFarmName checks a farm name: 1 to 40 ASCII letters and digits,
// as the public registrar requires.
func validateFarmName(field, name string) error {
	if name == "" {
		return invalid(field, "must not be empty")
	}
	if len(name) > maxFarmNameLen {
		return invalid(field, "%d characters, at most %d allowed", len(name), maxFarmNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return invalid(field, "%q: only ASCII letters and digits are allowed", name)
		}
	}
	return nil
}

// Stellar StrKey constants (SEP-0023): an account id is the base32 of a
// version byte, the 32-byte ed25519 key and a CRC16-XModem checksum in
// little-endian order.
const (
	stellarAccountVersion = 6 << 3 // 'G' as the first base32 character
	stellarAddressLen     = 56     // base32 of 1+32+2 = 35 bytes
)

// validateStellarAddress checks a Stellar account id ("G...", 56
// characters) including its checksum, so that a mistyped address is caught
// before rewards are sent to it.
func validateStellarAddress(field, addr string) error {
	if len(addr) != stellarAddressLen {
		return invalid(field, "a Stellar address has %d characters, got %d", stellarAddressLen, len(addr))
	}
	if addr[0] != 'G' {
		return invalid(field, "a Stellar account address starts with G")
	}
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(addr)
	if err != nil {
		return invalid(field, "not base32 (A-Z, 2-7)")
	}
	if raw[0] != stellarAccountVersion {
		return invalid(field, "not a Stellar account id (version byte %d)", raw[0])
	}
	payload, sum := raw[:len(raw)-2], raw[len(raw)-2:]
	if crc16XModem(payload) != binary.LittleEndian.Uint16(sum) {
		return invalid(field, "checksum mismatch (mistyped address?)")
	}
	return nil
}

// crc16XModem is CRC-16 with polynomial 0x1021, initial value 0, no
// reflection and no final XOR: the checksum of Stellar StrKeys.
func crc16XModem(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc ^= uint16(c) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// validateIP checks an address with or without a prefix length
// ("10.0.0.2", "10.0.0.2/24", "fe80::1/64").
func validateIP(field, s string) error {
	if s == "" || len(s) > maxIPLen {
		return invalid(field, "%q is not an IP address", s)
	}
	if strings.Contains(s, "/") {
		if _, err := netip.ParsePrefix(s); err != nil {
			return invalid(field, "%q is not an IP address with a prefix length", s)
		}
		return nil
	}
	if _, err := netip.ParseAddr(s); err != nil {
		return invalid(field, "%q is not an IP address", s)
	}
	return nil
}

// validateMAC checks a 48- or 64-bit hardware address in any notation
// net.ParseMAC knows ("aa:bb:cc:dd:ee:ff", "aa-bb-...", "aabb.ccdd.eeff").
func validateMAC(field, s string) error {
	hw, err := net.ParseMAC(s)
	if err != nil || (len(hw) != 6 && len(hw) != 8) {
		return invalid(field, "%q is not a MAC address", s)
	}
	return nil
}

// validateCoordinate checks a decimal coordinate string within ±limit. An
// empty value means unknown and is accepted. Exponent notation is accepted
// because ZOS formats coordinates with fmt.Sprint(float64).
func validateCoordinate(field, s string, limit float64) error {
	if s == "" {
		return nil
	}
	if len(s) > maxCoordinateLen {
		return invalid(field, "longer than %d characters", maxCoordinateLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E') {
			return invalid(field, "%q is not a decimal number", s)
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return invalid(field, "%q is not a decimal number", s)
	}
	if v < -limit || v > limit {
		return invalid(field, "%s is outside -%g..%g", s, limit, limit)
	}
	return nil
}

// validateText checks a free-text field: at most max characters, valid
// UTF-8, no control characters and no format characters (Unicode category
// Cf: bidi overrides, isolates and marks, zero-width spaces and joiners,
// the BOM, soft hyphens), which make a name display as something other
// than what it is.
func validateText(field, s string, max int, required bool) error {
	if s == "" {
		if required {
			return invalid(field, "must not be empty")
		}
		return nil
	}
	if !utf8.ValidString(s) {
		return invalid(field, "not valid UTF-8")
	}
	if n := utf8.RuneCountInString(s); n > max {
		return invalid(field, "%d characters, at most %d allowed", n, max)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return invalid(field, "contains a control character")
		}
		if unicode.Is(unicode.Cf, r) {
			return invalid(field, "contains the invisible formatting character U+%04X (bidi controls and zero-width characters are not allowed)", r)
		}
	}
	return nil
}

// validateInterfaceName checks a network interface name: printable ASCII
// without spaces or slashes.
func validateInterfaceName(field, s string) error {
	if s == "" || len(s) > maxInterfaceName {
		return invalid(field, "must be 1 to %d characters", maxInterfaceName)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '/' {
			return invalid(field, "%q: only printable ASCII without spaces or '/'", s)
		}
	}
	return nil
}

// validateVersion checks a ZOS version string (v4.1.2, 4.1.2-rc1).
func validateVersion(field, v string, required bool) error {
	if v == "" {
		if required {
			return invalid(field, "must not be empty")
		}
		return nil
	}
	if err := api.CheckVersion(v); err != nil {
		return invalid(field, "%v", err)
	}
	return nil
}

// validateResources checks resources against sane upper bounds.
func validateResources(r api.Resources) error {
	for _, c := range []struct {
		name  string
		value uint64
		max   uint64
	}{
		{"resources.cru", r.CRU, maxCRU},
		{"resources.mru", r.MRU, maxMRU},
		{"resources.sru", r.SRU, maxSRU},
		{"resources.hru", r.HRU, maxHRU},
	} {
		if c.value > c.max {
			return invalid(c.name, "%d is above the limit %d", c.value, c.max)
		}
	}
	return nil
}

// validateLocation checks country, city and coordinates.
func validateLocation(l api.Location) error {
	if err := validateText("location.country", l.Country, maxCountryLen, false); err != nil {
		return err
	}
	if err := validateText("location.city", l.City, maxCityLen, false); err != nil {
		return err
	}
	if err := validateCoordinate("location.latitude", l.Latitude, 90); err != nil {
		return err
	}
	return validateCoordinate("location.longitude", l.Longitude, 180)
}

// validateInterfaces checks the interface list: 1 to maxInterfaces entries,
// each with a name, a MAC and valid addresses.
func validateInterfaces(ifaces []api.Interface) error {
	if len(ifaces) == 0 {
		return invalid("interfaces", "at least one interface is required")
	}
	if len(ifaces) > maxInterfaces {
		return invalid("interfaces", "%d entries, at most %d allowed", len(ifaces), maxInterfaces)
	}
	for i, in := range ifaces {
		f := fmt.Sprintf("interfaces[%d]", i)
		if err := validateInterfaceName(f+".name", in.Name); err != nil {
			return err
		}
		if err := validateMAC(f+".mac", in.Mac); err != nil {
			return err
		}
		if len(in.IPs) > maxIPsPerInterface {
			return invalid(f+".ips", "%d addresses, at most %d allowed", len(in.IPs), maxIPsPerInterface)
		}
		for j, ip := range in.IPs {
			if err := validateIP(fmt.Sprintf("%s.ips[%d]", f, j), ip); err != nil {
				return err
			}
		}
	}
	return nil
}

// validateNode checks a node registration or update body.
func validateNode(n api.RegisterNodeRequest) error {
	if n.FarmID == 0 {
		return invalid("farm_id", "must be a farm id (>= 1)")
	}
	if err := validateResources(n.Resources); err != nil {
		return err
	}
	if err := validateLocation(n.Location); err != nil {
		return err
	}
	if err := validateInterfaces(n.Interfaces); err != nil {
		return err
	}
	// A serial is optional: VMs, containers and many boards have none, and a
	// node should report a missing fact as missing rather than invent one.
	if err := validateText("serial_number", n.SerialNumber, maxSerialLen, false); err != nil {
		return err
	}
	if err := validateAPIEndpoints(n.APIEndpoints); err != nil {
		return err
	}
	return validateVersion("zos_version", n.ZosVersion, false)
}

// validateAPIEndpoints checks a node's zos-api-light URLs: at most
// api.MaxAPIEndpoints, each as api.CheckAPIEndpoint wants, no duplicates.
func validateAPIEndpoints(eps []string) error {
	if len(eps) > api.MaxAPIEndpoints {
		return invalid("api_endpoints", "%d entries, at most %d allowed", len(eps), api.MaxAPIEndpoints)
	}
	for i, e := range eps {
		f := fmt.Sprintf("api_endpoints[%d]", i)
		if err := api.CheckAPIEndpoint(e); err != nil {
			return invalid(f, "%v", err)
		}
		if slices.Contains(eps[:i], e) {
			return invalid(f, "%q is listed twice", e)
		}
	}
	return nil
}

// validateRelays checks relay host names (host or host:port).
func validateRelays(relays []string) error {
	if len(relays) > maxRelays {
		return invalid("relays", "%d entries, at most %d allowed", len(relays), maxRelays)
	}
	for i, r := range relays {
		f := fmt.Sprintf("relays[%d]", i)
		if r == "" || len(r) > maxRelayLen {
			return invalid(f, "must be 1 to %d characters", maxRelayLen)
		}
		host := r
		if h, port, err := net.SplitHostPort(r); err == nil {
			if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
				return invalid(f, "%q has a bad port", r)
			}
			host = h
		}
		if !api.IsHostName(host) {
			if _, err := netip.ParseAddr(host); err != nil {
				return invalid(f, "%q is not a host name or IP address", r)
			}
		}
	}
	return nil
}

// validateRMBEncKey checks the RMB encryption key: printable ASCII without
// spaces, bounded.
func validateRMBEncKey(k string) error {
	if len(k) > maxRMBEncKeyLen {
		return invalid("rmb_enc_key", "%d characters, at most %d allowed", len(k), maxRMBEncKeyLen)
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; c <= ' ' || c >= 0x7f {
			return invalid("rmb_enc_key", "only printable ASCII without spaces is allowed")
		}
	}
	return nil
}

// normalizeTestFarms checks the test farm list and returns it sorted
// without duplicates (never nil, so it is stored and served as []).
func normalizeTestFarms(ids []uint64) ([]uint64, error) {
	if len(ids) > maxTestFarms {
		return nil, invalid("test_farms", "%d entries, at most %d allowed", len(ids), maxTestFarms)
	}
	out := slices.Clone(ids)
	if out == nil {
		out = []uint64{}
	}
	for i, id := range out {
		if id == 0 {
			return nil, invalid(fmt.Sprintf("test_farms[%d]", i), "0 is not a farm id")
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// validateNodeIDs checks the node list of an approval request.
func validateNodeIDs(ids []uint64) error {
	if len(ids) == 0 {
		return invalid("node_ids", "at least one node id is required")
	}
	if len(ids) > maxApprovalNodes {
		return invalid("node_ids", "%d entries, at most %d allowed", len(ids), maxApprovalNodes)
	}
	for i, id := range ids {
		if id == 0 {
			return invalid(fmt.Sprintf("node_ids[%d]", i), "0 is not a node id")
		}
	}
	return nil
}

// parseID parses a path or query id: a decimal integer from 1 to
// maxInteger.
func parseID(field, s string) (uint64, error) {
	id, err := parseUint(field, s)
	if err != nil {
		return 0, err
	}
	if id == 0 {
		return 0, invalid(field, "must not be zero")
	}
	return id, nil
}

// parseUint parses a path or query number: decimal digits, at most
// maxInteger (the same refusal as for integers in bodies).
func parseUint(field, s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if errors.Is(err, strconv.ErrRange) || err == nil && n > maxInteger {
		return 0, outOfRange(field, s)
	}
	if err != nil {
		return 0, invalid(field, "%q is not a non-negative integer", truncate(s, 40))
	}
	return n, nil
}
