package jsonrpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
)

// ErrUnauthorized is matched by an HTTPError of status 401 (the server
// did not accept the request's signature).
var ErrUnauthorized = errors.New("unauthorized")

// HTTPError is an answer that is not JSON-RPC: the server refused the
// request before reading it (authentication, size), or something else
// answered.
type HTTPError struct {
	// Status is the HTTP status code.
	Status int
	// Message is the "error" member of the body, or the body.
	Message string
}

// Error returns "node answered <status>: <message>".
func (e *HTTPError) Error() string {
	return fmt.Sprintf("node answered %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

// Is matches ErrUnauthorized for 401.
func (e *HTTPError) Is(target error) bool {
	return target == ErrUnauthorized && e.Status == http.StatusUnauthorized
}

// MaxAnswer bounds an answer the client reads.
const MaxAnswer = 16 << 20

// Client posts calls to one endpoint. Signing is its HTTP client's
// business (an auth.Transport). It is safe for concurrent use.
type Client struct {
	// Endpoint is the URL calls are POSTed to.
	Endpoint string
	// HTTP sends them (nil: http.DefaultClient).
	HTTP *http.Client
	// Header, when set, adds fields to every request (before signing).
	Header http.Header

	id atomic.Uint64
}

// Call calls method with by-name params (nil for none) and decodes the
// result into result (nil to drop it). JSON-RPC errors are *Error;
// refusals before JSON-RPC are *HTTPError.
func (c *Client) Call(ctx context.Context, method string, params, result any) error {
	req := struct {
		JSONRPC string `json:"jsonrpc"`
		ID      uint64 `json:"id"`
		Method  string `json:"method"`
		Params  any    `json:"params,omitempty"`
	}{Version, c.id.Add(1), method, params}
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Endpoint, bytes.NewReader(body))
	if err != nil {
		return err
	}
	for k, vs := range c.Header {
		hr.Header[k] = vs
	}
	hr.Header.Set("Content-Type", "application/json")
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(hr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswer))
	if err != nil {
		return fmt.Errorf("%s: reading the answer: %w", method, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(data))
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return &HTTPError{Status: resp.StatusCode, Message: msg}
	}
	var r Response
	if err := json.Unmarshal(data, &r); err != nil {
		return fmt.Errorf("%s: answer is not JSON-RPC: %w", method, err)
	}
	if r.Error != nil {
		return r.Error
	}
	if result != nil {
		if err := json.Unmarshal(r.Result, result); err != nil {
			return fmt.Errorf("%s: decoding the result: %w", method, err)
		}
	}
	return nil
}
