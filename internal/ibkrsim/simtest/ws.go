package simtest

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/coder/websocket"
)

// ReadUntil reads JSON messages from a simulator WebSocket (its own or a
// bridge to it) until match accepts one; it returns every message read,
// the matching one last.
func ReadUntil(ctx context.Context, c *websocket.Conn, match func(map[string]any) bool) ([]map[string]any, error) {
	var seen []map[string]any
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			return seen, err
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return seen, fmt.Errorf("message %q: %w", b, err)
		}
		seen = append(seen, m)
		if match(m) {
			return seen, nil
		}
	}
}

// Topic matches the messages of one topic, such as "sts" or "smd+265598".
func Topic(topic string) func(map[string]any) bool {
	return func(m map[string]any) bool { return m["topic"] == topic }
}
