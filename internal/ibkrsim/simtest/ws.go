package simtest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

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

// WantTicks subscribes c to the market data of AAPL (conid 265598) and
// fails the test unless a tick arrives with its last, bid and ask (fields
// 31, 84 and 86).
func WantTicks(ctx context.Context, t testing.TB, c *websocket.Conn) {
	t.Helper()
	if err := c.Write(ctx, websocket.MessageText, []byte(`smd+265598+{"fields":["31","84","86"]}`)); err != nil {
		t.Fatal(err)
	}
	seen, err := ReadUntil(ctx, c, Topic("smd+265598"))
	if err != nil {
		t.Fatal(err)
	}
	tick := seen[len(seen)-1]
	for _, f := range []string{"31", "84", "86"} {
		if s, _ := tick[f].(string); s == "" {
			t.Errorf("tick lacks field %s: %v", f, tick)
		}
	}
}
