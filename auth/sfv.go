package auth

// A strict implementation of the parts of RFC 8941 (Structured Field Values
// for HTTP) that HTTP message signatures need: dictionaries, inner lists,
// items, parameters and every bare item type (integer, decimal, string,
// token, byte sequence, boolean). Parsing follows the algorithms of RFC 8941
// section 4.2 step by step; serialization follows section 4.1. Parameters
// and dictionary members keep their order, and a repeated key overwrites the
// earlier value in place, as the RFC requires.

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/grid4/grid4/internal/strictb64"
)

// errSF is the root of every structured-field parse or serialize failure.
var errSF = errors.New("structured field")

func sfErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errSF}, args...)...)
}

// sfKind is the type of a bare item.
type sfKind uint8

const (
	sfInteger sfKind = iota + 1
	sfDecimal
	sfString
	sfToken
	sfBytes
	sfBoolean
)

// Limits of RFC 8941 numbers.
const (
	sfMaxInteger = 999_999_999_999_999
	// decimals are kept as thousandths: at most 12 integer digits and 3
	// fractional digits, so the magnitude fits in an int64.
	sfMaxDecimalThousandths = 999_999_999_999_999
)

// sfBare is a bare item. Decimals are stored as an integer number of
// thousandths so that a parsed decimal serializes back exactly.
type sfBare struct {
	kind sfKind
	num  int64  // integer, or decimal in thousandths
	str  string // string or token
	b    []byte // byte sequence
	bool bool   // boolean
}

func sfInt(n int64) sfBare      { return sfBare{kind: sfInteger, num: n} }
func sfStr(s string) sfBare     { return sfBare{kind: sfString, str: s} }
func sfTok(s string) sfBare     { return sfBare{kind: sfToken, str: s} }
func sfBytesOf(b []byte) sfBare { return sfBare{kind: sfBytes, b: b} }
func sfBool(v bool) sfBare      { return sfBare{kind: sfBoolean, bool: v} }

// sfParam is one parameter: a key and a bare item.
type sfParam struct {
	key string
	val sfBare
}

// sfParams is an ordered set of parameters.
type sfParams []sfParam

// set adds or overwrites (in place) the parameter key.
func (ps sfParams) set(key string, v sfBare) sfParams {
	for i := range ps {
		if ps[i].key == key {
			ps[i].val = v
			return ps
		}
	}
	return append(ps, sfParam{key: key, val: v})
}

// sfItem is a bare item with parameters.
type sfItem struct {
	bare   sfBare
	params sfParams
}

// sfInnerList is a parenthesized list of items with parameters.
type sfInnerList struct {
	items  []sfItem
	params sfParams
}

// sfMember is a dictionary member value: either an item or an inner list.
type sfMember struct {
	key     string
	isInner bool
	item    sfItem
	inner   sfInnerList
}

// sfDict is an ordered dictionary.
type sfDict []sfMember

// get returns the member named key.
func (d sfDict) get(key string) (sfMember, bool) {
	for _, m := range d {
		if m.key == key {
			return m, true
		}
	}
	return sfMember{}, false
}

func (d sfDict) set(m sfMember) sfDict {
	for i := range d {
		if d[i].key == m.key {
			d[i] = m
			return d
		}
	}
	return append(d, m)
}

// ---------------------------------------------------------------- parsing

type sfParser struct {
	s   string
	pos int
}

func (p *sfParser) empty() bool { return p.pos >= len(p.s) }
func (p *sfParser) peek() byte {
	if p.empty() {
		return 0
	}
	return p.s[p.pos]
}

func (p *sfParser) skipSP() {
	for !p.empty() && p.s[p.pos] == ' ' {
		p.pos++
	}
}

func (p *sfParser) skipOWS() {
	for !p.empty() && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t') {
		p.pos++
	}
}

// parseSFDictionary parses a whole field value as a Dictionary
// (RFC 8941 section 4.2, with 4.2.2). An empty field is an empty dictionary.
func parseSFDictionary(s string) (sfDict, error) {
	p := &sfParser{s: s}
	p.skipSP()
	var d sfDict
	for !p.empty() {
		key, err := p.parseKey()
		if err != nil {
			return nil, err
		}
		m := sfMember{key: key}
		if p.peek() == '=' {
			p.pos++
			if err := p.parseItemOrInnerList(&m); err != nil {
				return nil, err
			}
		} else {
			params, err := p.parseParams()
			if err != nil {
				return nil, err
			}
			m.item = sfItem{bare: sfBool(true), params: params}
		}
		d = d.set(m)
		p.skipOWS()
		if p.empty() {
			return d, nil
		}
		if p.s[p.pos] != ',' {
			return nil, sfErrorf("expected ',' after dictionary member %q at offset %d", key, p.pos)
		}
		p.pos++
		p.skipOWS()
		if p.empty() {
			return nil, sfErrorf("trailing ',' in dictionary")
		}
	}
	return d, nil
}

// parseSFItem parses a whole field value as an Item.
func parseSFItem(s string) (sfItem, error) {
	p := &sfParser{s: s}
	p.skipSP()
	it, err := p.parseItem()
	if err != nil {
		return sfItem{}, err
	}
	p.skipSP()
	if !p.empty() {
		return sfItem{}, sfErrorf("unexpected %q after item at offset %d", p.s[p.pos], p.pos)
	}
	return it, nil
}

// parseSFInnerList parses a whole field value as a single inner list (used
// for the value of a Signature-Input member given on its own).
func parseSFInnerList(s string) (sfInnerList, error) {
	p := &sfParser{s: s}
	p.skipSP()
	il, err := p.parseInnerList()
	if err != nil {
		return sfInnerList{}, err
	}
	p.skipSP()
	if !p.empty() {
		return sfInnerList{}, sfErrorf("unexpected %q after inner list at offset %d", p.s[p.pos], p.pos)
	}
	return il, nil
}

func (p *sfParser) parseItemOrInnerList(m *sfMember) error {
	if p.peek() == '(' {
		il, err := p.parseInnerList()
		if err != nil {
			return err
		}
		m.isInner, m.inner = true, il
		return nil
	}
	it, err := p.parseItem()
	if err != nil {
		return err
	}
	m.item = it
	return nil
}

func (p *sfParser) parseInnerList() (sfInnerList, error) {
	if p.peek() != '(' {
		return sfInnerList{}, sfErrorf("expected '(' at offset %d", p.pos)
	}
	p.pos++
	var il sfInnerList
	for !p.empty() {
		p.skipSP()
		if p.peek() == ')' {
			p.pos++
			params, err := p.parseParams()
			if err != nil {
				return sfInnerList{}, err
			}
			il.params = params
			return il, nil
		}
		it, err := p.parseItem()
		if err != nil {
			return sfInnerList{}, err
		}
		il.items = append(il.items, it)
		if c := p.peek(); c != ' ' && c != ')' {
			return sfInnerList{}, sfErrorf("expected ' ' or ')' in inner list at offset %d", p.pos)
		}
	}
	return sfInnerList{}, sfErrorf("unterminated inner list")
}

func (p *sfParser) parseItem() (sfItem, error) {
	b, err := p.parseBareItem()
	if err != nil {
		return sfItem{}, err
	}
	params, err := p.parseParams()
	if err != nil {
		return sfItem{}, err
	}
	return sfItem{bare: b, params: params}, nil
}

func (p *sfParser) parseParams() (sfParams, error) {
	var ps sfParams
	for p.peek() == ';' {
		p.pos++
		p.skipSP()
		key, err := p.parseKey()
		if err != nil {
			return nil, err
		}
		v := sfBool(true)
		if p.peek() == '=' {
			p.pos++
			v, err = p.parseBareItem()
			if err != nil {
				return nil, err
			}
		}
		ps = ps.set(key, v)
	}
	return ps, nil
}

func isLCAlpha(c byte) bool { return c >= 'a' && c <= 'z' }
func isAlpha(c byte) bool   { return isLCAlpha(c) || (c >= 'A' && c <= 'Z') }
func isDigit(c byte) bool   { return c >= '0' && c <= '9' }

// isTChar reports whether c is a tchar of RFC 9110.
func isTChar(c byte) bool {
	if isAlpha(c) || isDigit(c) {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func isKeyChar(c byte) bool {
	return isLCAlpha(c) || isDigit(c) || c == '_' || c == '-' || c == '.' || c == '*'
}

func (p *sfParser) parseKey() (string, error) {
	if c := p.peek(); p.empty() || !(isLCAlpha(c) || c == '*') {
		return "", sfErrorf("expected a key at offset %d", p.pos)
	}
	start := p.pos
	for !p.empty() && isKeyChar(p.s[p.pos]) {
		p.pos++
	}
	return p.s[start:p.pos], nil
}

func (p *sfParser) parseBareItem() (sfBare, error) {
	if p.empty() {
		return sfBare{}, sfErrorf("expected an item, got end of input")
	}
	c := p.s[p.pos]
	switch {
	case c == '-' || isDigit(c):
		return p.parseNumber()
	case c == '"':
		return p.parseString()
	case isAlpha(c) || c == '*':
		return p.parseToken()
	case c == ':':
		return p.parseByteSequence()
	case c == '?':
		return p.parseBoolean()
	}
	return sfBare{}, sfErrorf("unexpected %q at offset %d", c, p.pos)
}

func (p *sfParser) parseNumber() (sfBare, error) {
	neg := false
	if p.peek() == '-' {
		neg = true
		p.pos++
	}
	if p.empty() || !isDigit(p.s[p.pos]) {
		return sfBare{}, sfErrorf("expected a digit at offset %d", p.pos)
	}
	start := p.pos
	dot := -1
	for !p.empty() {
		c := p.s[p.pos]
		if isDigit(c) {
			p.pos++
		} else if c == '.' && dot < 0 {
			if p.pos-start > 12 {
				return sfBare{}, sfErrorf("decimal integer part longer than 12 digits")
			}
			dot = p.pos
			p.pos++
		} else {
			break
		}
		if dot < 0 && p.pos-start > 15 {
			return sfBare{}, sfErrorf("integer longer than 15 digits")
		}
		if dot >= 0 && p.pos-start > 16 {
			return sfBare{}, sfErrorf("decimal longer than 16 characters")
		}
	}
	num := p.s[start:p.pos]
	if dot < 0 {
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return sfBare{}, sfErrorf("integer %q: %v", num, err)
		}
		if neg {
			n = -n
		}
		return sfInt(n), nil
	}
	intPart, frac := p.s[start:dot], p.s[dot+1:p.pos]
	if len(frac) == 0 {
		return sfBare{}, sfErrorf("decimal %q ends with '.'", num)
	}
	if len(frac) > 3 {
		return sfBare{}, sfErrorf("decimal %q has more than 3 fractional digits", num)
	}
	ip, err := strconv.ParseInt(intPart, 10, 64)
	if err != nil {
		return sfBare{}, sfErrorf("decimal %q: %v", num, err)
	}
	fp, err := strconv.ParseInt(frac+strings.Repeat("0", 3-len(frac)), 10, 64)
	if err != nil {
		return sfBare{}, sfErrorf("decimal %q: %v", num, err)
	}
	n := ip*1000 + fp
	if neg {
		n = -n
	}
	return sfBare{kind: sfDecimal, num: n}, nil
}

func (p *sfParser) parseString() (sfBare, error) {
	p.pos++ // opening DQUOTE
	var b strings.Builder
	for !p.empty() {
		c := p.s[p.pos]
		p.pos++
		switch {
		case c == '\\':
			if p.empty() {
				return sfBare{}, sfErrorf("unterminated escape in string")
			}
			n := p.s[p.pos]
			p.pos++
			if n != '"' && n != '\\' {
				return sfBare{}, sfErrorf("invalid escape \\%c in string", n)
			}
			b.WriteByte(n)
		case c == '"':
			return sfStr(b.String()), nil
		case c < 0x20 || c > 0x7e:
			return sfBare{}, sfErrorf("invalid character 0x%02x in string", c)
		default:
			b.WriteByte(c)
		}
	}
	return sfBare{}, sfErrorf("unterminated string")
}

func (p *sfParser) parseToken() (sfBare, error) {
	start := p.pos
	p.pos++ // first char already checked: ALPHA or '*'
	for !p.empty() {
		c := p.s[p.pos]
		if !isTChar(c) && c != ':' && c != '/' {
			break
		}
		p.pos++
	}
	return sfTok(p.s[start:p.pos]), nil
}

func isB64Char(c byte) bool {
	return isAlpha(c) || isDigit(c) || c == '+' || c == '/' || c == '='
}

func (p *sfParser) parseByteSequence() (sfBare, error) {
	p.pos++ // opening ':'
	end := strings.IndexByte(p.s[p.pos:], ':')
	if end < 0 {
		return sfBare{}, sfErrorf("unterminated byte sequence")
	}
	content := p.s[p.pos : p.pos+end]
	p.pos += end + 1
	for i := 0; i < len(content); i++ {
		if !isB64Char(content[i]) {
			return sfBare{}, sfErrorf("invalid base64 character %q in byte sequence", content[i])
		}
	}
	// RFC 8941 asks parsers not to fail on missing padding: synthesize it.
	if strings.IndexByte(content, '=') < 0 {
		if r := len(content) % 4; r != 0 {
			content += strings.Repeat("=", 4-r)
		}
	}
	// Canonical spelling only (zero padding bits), so that a signature or
	// digest has one textual form.
	b, err := strictb64.Std(content)
	if err != nil {
		return sfBare{}, sfErrorf("byte sequence: %v", err)
	}
	return sfBytesOf(b), nil
}

func (p *sfParser) parseBoolean() (sfBare, error) {
	p.pos++ // '?'
	switch p.peek() {
	case '1':
		p.pos++
		return sfBool(true), nil
	case '0':
		p.pos++
		return sfBool(false), nil
	}
	return sfBare{}, sfErrorf("invalid boolean at offset %d", p.pos)
}

// ---------------------------------------------------------- serialization

func (b sfBare) serialize(w *strings.Builder) error {
	switch b.kind {
	case sfInteger:
		if b.num > sfMaxInteger || b.num < -sfMaxInteger {
			return sfErrorf("integer %d out of range", b.num)
		}
		w.WriteString(strconv.FormatInt(b.num, 10))
	case sfDecimal:
		n := b.num
		if n > sfMaxDecimalThousandths || n < -sfMaxDecimalThousandths {
			return sfErrorf("decimal out of range")
		}
		if n < 0 {
			w.WriteByte('-')
			n = -n
		}
		w.WriteString(strconv.FormatInt(n/1000, 10))
		w.WriteByte('.')
		frac := fmt.Sprintf("%03d", n%1000)
		frac = strings.TrimRight(frac, "0")
		if frac == "" {
			frac = "0"
		}
		w.WriteString(frac)
	case sfString:
		w.WriteByte('"')
		for i := 0; i < len(b.str); i++ {
			c := b.str[i]
			if c < 0x20 || c > 0x7e {
				return sfErrorf("invalid character 0x%02x in string", c)
			}
			if c == '"' || c == '\\' {
				w.WriteByte('\\')
			}
			w.WriteByte(c)
		}
		w.WriteByte('"')
	case sfToken:
		if !validToken(b.str) {
			return sfErrorf("invalid token %q", b.str)
		}
		w.WriteString(b.str)
	case sfBytes:
		w.WriteByte(':')
		w.WriteString(base64.StdEncoding.EncodeToString(b.b))
		w.WriteByte(':')
	case sfBoolean:
		if b.bool {
			w.WriteString("?1")
		} else {
			w.WriteString("?0")
		}
	default:
		return sfErrorf("unknown item type %d", b.kind)
	}
	return nil
}

func validToken(s string) bool {
	if s == "" || !(isAlpha(s[0]) || s[0] == '*') {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isTChar(c) && c != ':' && c != '/' {
			return false
		}
	}
	return true
}

func validKey(s string) bool {
	if s == "" || !(isLCAlpha(s[0]) || s[0] == '*') {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isKeyChar(s[i]) {
			return false
		}
	}
	return true
}

func (ps sfParams) serialize(w *strings.Builder) error {
	for _, p := range ps {
		if !validKey(p.key) {
			return sfErrorf("invalid parameter key %q", p.key)
		}
		w.WriteByte(';')
		w.WriteString(p.key)
		if p.val.kind == sfBoolean && p.val.bool {
			continue
		}
		w.WriteByte('=')
		if err := p.val.serialize(w); err != nil {
			return err
		}
	}
	return nil
}

func (it sfItem) serialize(w *strings.Builder) error {
	if err := it.bare.serialize(w); err != nil {
		return err
	}
	return it.params.serialize(w)
}

func (il sfInnerList) serialize(w *strings.Builder) error {
	w.WriteByte('(')
	for i, it := range il.items {
		if i > 0 {
			w.WriteByte(' ')
		}
		if err := it.serialize(w); err != nil {
			return err
		}
	}
	w.WriteByte(')')
	return il.params.serialize(w)
}

// String serializes the inner list; it returns "" when the list holds a
// value RFC 8941 cannot represent.
func (il sfInnerList) String() string {
	var w strings.Builder
	if err := il.serialize(&w); err != nil {
		return ""
	}
	return w.String()
}

func (d sfDict) serialize() (string, error) {
	var w strings.Builder
	for i, m := range d {
		if !validKey(m.key) {
			return "", sfErrorf("invalid dictionary key %q", m.key)
		}
		if i > 0 {
			w.WriteString(", ")
		}
		w.WriteString(m.key)
		switch {
		case m.isInner:
			w.WriteByte('=')
			if err := m.inner.serialize(&w); err != nil {
				return "", err
			}
		case m.item.bare.kind == sfBoolean && m.item.bare.bool:
			if err := m.item.params.serialize(&w); err != nil {
				return "", err
			}
		default:
			w.WriteByte('=')
			if err := m.item.serialize(&w); err != nil {
				return "", err
			}
		}
	}
	return w.String(), nil
}
