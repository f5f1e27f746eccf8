// Package iovd is the device plugin's client of iovd's REST API (api/openapi.yaml) over
// its Unix socket: pools, devices, quarantine, allocations and the event stream.
package iovd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// Client talks to one iovd socket. Safe for concurrent use.
type Client struct {
	Socket string
	http   *http.Client
	stream *http.Client // no overall timeout: the event stream lasts
}

// Unreachable wraps every failure to reach iovd (socket missing, refused, cut off), so
// callers can tell "iovd is down" from "iovd said no".
type Unreachable struct {
	Socket string
	Err    error
}

func (e *Unreachable) Error() string {
	return fmt.Sprintf("iovd unreachable at %s: %v", e.Socket, e.Err)
}

func (e *Unreachable) Unwrap() error { return e.Err }

// APIError is iovd's error reply: {"error": {"code", "message"}} with its HTTP status.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("iovd: %s (%d): %s", e.Code, e.Status, e.Message)
}

// IsUnreachable says whether err means iovd could not be reached.
func IsUnreachable(err error) bool {
	var u *Unreachable
	return errors.As(err, &u)
}

// New returns a client of the iovd listening on socket.
func New(socket string) *Client {
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}
	transport := &http.Transport{DialContext: dial, MaxIdleConnsPerHost: 8}
	streamTransport := &http.Transport{DialContext: dial, DisableKeepAlives: true}
	return &Client{
		Socket: socket,
		http:   &http.Client{Transport: transport, Timeout: 60 * time.Second},
		stream: &http.Client{Transport: streamTransport},
	}
}

// do sends one request; a 2xx body is decoded into out (when not nil).
func (c *Client) do(ctx context.Context, method, path string, body, out interface{}) error {
	var reader io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		reader = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://iovd"+path, reader)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return &Unreachable{Socket: c.Socket, Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return &Unreachable{Socket: c.Socket, Err: err}
	}
	if resp.StatusCode/100 != 2 {
		return decodeError(resp.StatusCode, raw)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(raw, out)
}

func decodeError(status int, raw []byte) error {
	var reply struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &reply) != nil || reply.Error.Code == "" {
		return &APIError{Status: status, Code: "unknown", Message: string(raw)}
	}
	return &APIError{Status: status, Code: reply.Error.Code, Message: reply.Error.Message}
}

// Pools is GET /v1/pools.
func (c *Client) Pools(ctx context.Context) ([]Pool, error) {
	var reply struct {
		Pools []Pool `json:"pools"`
	}
	err := c.do(ctx, http.MethodGet, "/v1/pools", nil, &reply)
	return reply.Pools, err
}

// Devices is GET /v1/devices (every function, sorted by address).
func (c *Client) Devices(ctx context.Context) ([]Device, error) {
	var reply struct {
		Devices []Device `json:"devices"`
	}
	err := c.do(ctx, http.MethodGet, "/v1/devices", nil, &reply)
	return reply.Devices, err
}

// Quarantine is GET /v1/quarantine.
func (c *Client) Quarantine(ctx context.Context) ([]Quarantined, error) {
	var reply struct {
		Quarantined []Quarantined `json:"quarantined"`
	}
	err := c.do(ctx, http.MethodGet, "/v1/quarantine", nil, &reply)
	return reply.Quarantined, err
}

// Allocations is GET /v1/allocations.
func (c *Client) Allocations(ctx context.Context) ([]Allocation, error) {
	var reply struct {
		Allocations []Allocation `json:"allocations"`
	}
	err := c.do(ctx, http.MethodGet, "/v1/allocations", nil, &reply)
	return reply.Allocations, err
}

// Allocate is POST /v1/allocations of one device to owner.
func (c *Client) Allocate(ctx context.Context, owner, device string) (*Allocation, error) {
	body := map[string]string{"owner": owner, "device": device}
	var a Allocation
	if err := c.do(ctx, http.MethodPost, "/v1/allocations", body, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// AllocateInPool is POST /v1/allocations of one device to owner as a member of pool:
// iovd refuses a device the pool's selector does not match (409 device_not_in_pool), and
// the allocation counts in the pool (GET /v1/pools, DELETE refused while it is held).
func (c *Client) AllocateInPool(ctx context.Context, owner, pool, device string) (*Allocation, error) {
	body := map[string]string{"owner": owner, "pool": pool, "device": device}
	var a Allocation
	if err := c.do(ctx, http.MethodPost, "/v1/allocations", body, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// Release is DELETE /v1/allocations/{id}: iovd resets the devices and gives them back
// (or quarantines those it cannot reset).
func (c *Client) Release(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/v1/allocations/"+url.PathEscape(id), nil, nil)
}

// SetOwner is PATCH /v1/allocations/{id}: a new owner label, nothing else changed (iovd
// refuses a VM's allocation, 409 allocation_in_use; 404 once it was released).
func (c *Client) SetOwner(ctx context.Context, id, owner string) (*Allocation, error) {
	var a Allocation
	body := map[string]string{"owner": owner}
	if err := c.do(ctx, http.MethodPatch, "/v1/allocations/"+url.PathEscape(id), body, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// Rescan is POST /v1/rescan.
func (c *Client) Rescan(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/rescan", nil, nil)
}

// Do is a raw request for callers that need another endpoint (tests, benchmarks).
func (c *Client) Do(ctx context.Context, method, path string, body, out interface{}) error {
	return c.do(ctx, method, path, body, out)
}
