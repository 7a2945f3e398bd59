package bus

import (
	"fmt"
	"strings"
)

// maxNameLen bounds each part of an object or stream name.
const maxNameLen = 64

// Object names a served object: a module, an object inside it and the
// version of its interface, written "module/object@version"
// (for example "identityd/manager@1.0").
type Object struct {
	// Module is the module (daemon) that serves the object, e.g. "identityd".
	Module string
	// Name is the object inside the module, e.g. "manager".
	Name string
	// Version is the version of the object's interface, e.g. "1.0".
	Version string
}

// ParseObject parses "module/object@version". Module and object are made
// of lower-case letters, digits, '_' and '-' and start with a letter or a
// digit; the version is made of letters, digits, '.', '_', '+' and '-'.
func ParseObject(s string) (Object, error) {
	path, version, ok := strings.Cut(s, "@")
	if !ok {
		return Object{}, fmt.Errorf("bus: object %q: want module/object@version", s)
	}
	module, name, ok := strings.Cut(path, "/")
	if !ok {
		return Object{}, fmt.Errorf("bus: object %q: want module/object@version", s)
	}
	o := Object{Module: module, Name: name, Version: version}
	if err := o.validate(); err != nil {
		return Object{}, fmt.Errorf("bus: object %q: %w", s, err)
	}
	return o, nil
}

// String returns "module/object@version".
func (o Object) String() string { return o.Module + "/" + o.Name + "@" + o.Version }

func (o Object) validate() error {
	if err := checkName("module", o.Module); err != nil {
		return err
	}
	if err := checkName("object", o.Name); err != nil {
		return err
	}
	return checkVersion(o.Version)
}

// StreamName names an event stream: the publishing module and the stream,
// written "module/stream" (for example "netlightd/addresses").
type StreamName struct {
	// Module is the module that publishes on the stream.
	Module string
	// Name is the stream inside the module.
	Name string
}

// ParseStream parses "module/stream", with the character rules of
// ParseObject for both parts.
func ParseStream(s string) (StreamName, error) {
	module, name, ok := strings.Cut(s, "/")
	if !ok {
		return StreamName{}, fmt.Errorf("bus: stream %q: want module/stream", s)
	}
	if err := checkName("module", module); err != nil {
		return StreamName{}, fmt.Errorf("bus: stream %q: %w", s, err)
	}
	if err := checkName("stream", name); err != nil {
		return StreamName{}, fmt.Errorf("bus: stream %q: %w", s, err)
	}
	return StreamName{Module: module, Name: name}, nil
}

// String returns "module/stream".
func (s StreamName) String() string { return s.Module + "/" + s.Name }

func checkName(what, s string) error {
	if s == "" {
		return fmt.Errorf("empty %s name", what)
	}
	if len(s) > maxNameLen {
		return fmt.Errorf("%s name longer than %d bytes", what, maxNameLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '_' || c == '-') && i > 0:
		default:
			return fmt.Errorf("%s name %q: character %q not allowed (use a-z, 0-9, '_', '-')", what, s, c)
		}
	}
	return nil
}

func checkVersion(s string) error {
	if s == "" {
		return fmt.Errorf("empty version")
	}
	if len(s) > maxNameLen {
		return fmt.Errorf("version longer than %d bytes", maxNameLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '.' || c == '_' || c == '+' || c == '-') && i > 0:
		default:
			return fmt.Errorf("version %q: character %q not allowed (use letters, digits, '.', '_', '+', '-')", s, c)
		}
	}
	return nil
}

// checkMethod accepts Go-style identifiers: a letter or '_' then letters,
// digits and '_'. Names starting with "bus." are the bus's own and are not
// accepted here.
func checkMethod(s string) error {
	if s == "" {
		return fmt.Errorf("empty method name")
	}
	if len(s) > maxNameLen {
		return fmt.Errorf("method name longer than %d bytes", maxNameLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return fmt.Errorf("method name %q: character %q not allowed (use a Go identifier)", s, c)
		}
	}
	return nil
}

// keys builds the Redis key names under one prefix.
type keys struct{ prefix string }

// queue is the list an object's requests are pushed to.
func (k keys) queue(o Object) string { return k.prefix + o.String() }

// reply is the list a client's replies are pushed to.
func (k keys) reply(clientID string) string { return k.prefix + "reply:" + clientID }

// control is the list that wakes a server's fetch loop.
func (k keys) control(serverID string) string { return k.prefix + "control:" + serverID }

// stream is the Redis stream holding a named event stream.
func (k keys) stream(s StreamName) string { return k.prefix + "stream:" + s.String() }
