package iovd

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// Event is one event of GET /v1/events (schema Event); Seq is the SSE id (0 for
// subscribed and gap, which carry none).
type Event struct {
	Seq  uint64          `json:"seq"`
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

// Follow reads iovd's event stream as Server-Sent Events (WHATWG HTML §9.2) and calls
// onEvent for each event, in order, until the stream ends or ctx is done. lastID, when
// not 0, is sent as Last-Event-ID so iovd first replays what came after it (or says gap).
// The first event of a live stream is "subscribed": from then on nothing is missed.
func (c *Client) Follow(ctx context.Context, lastID uint64, onEvent func(Event)) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://iovd/v1/events", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	if lastID != 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatUint(lastID, 10))
	}
	resp, err := c.stream.Do(req)
	if err != nil {
		return &Unreachable{Socket: c.Socket, Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &APIError{Status: resp.StatusCode, Code: "events_refused", Message: resp.Status}
	}
	err = readEvents(bufio.NewReader(resp.Body), onEvent)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return &Unreachable{Socket: c.Socket, Err: err}
}

// readEvents parses SSE frames: "field: value" lines, a blank line dispatches, lines
// starting with ':' are comments (iovd's keepalives). Returns the read error at the end.
func readEvents(r *bufio.Reader, onEvent func(Event)) error {
	var ev Event
	var data strings.Builder
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "":
			if data.Len() > 0 {
				_ = json.Unmarshal([]byte(data.String()), &ev)
				onEvent(ev)
			}
			ev, data = Event{}, strings.Builder{}
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "id:"):
			ev.Seq, _ = strconv.ParseUint(strings.TrimSpace(line[3:]), 10, 64)
		case strings.HasPrefix(line, "data:"):
			data.WriteString(strings.TrimPrefix(line[5:], " "))
		}
	}
}
