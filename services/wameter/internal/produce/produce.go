// Package produce writes records from a JSON-lines file (the format of
// `wameter simulate -out`) to the pipeline's input topics:
//
//	{"topic":"webhooks"|"sends","key":"...","headers":{"phone_number_id":"..."},"value":{...raw JSON...}}
//
// A record whose body is not JSON (a malformed record the simulator
// injects) carries it as a string in "value_raw" instead.
package produce

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/segmentio/kafka-go"

	"github.com/wameter/wameter/pkg/stream"
)

// Line is one record of the file.
type Line struct {
	Topic   string            `json:"topic"`
	Key     string            `json:"key"`
	Headers map[string]string `json:"headers"`
	Value   json.RawMessage   `json:"value"`
	Raw     *string           `json:"value_raw"`
}

// Topics maps a line's topic ("webhooks", "sends") to a Kafka topic.
type Topics map[string]string

// Write reads lines from r and writes them to Kafka through p, in batches,
// in file order. It returns how many records it wrote.
func Write(ctx context.Context, r io.Reader, topics Topics, p *stream.Producer) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	var batch []kafka.Message
	n, lineNo := 0, 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := p.WriteMessages(ctx, batch...); err != nil {
			return err
		}
		n += len(batch)
		batch = batch[:0]
		return nil
	}
	for sc.Scan() {
		lineNo++
		if len(sc.Bytes()) == 0 {
			continue
		}
		var l Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return n, fmt.Errorf("line %d: %w", lineNo, err)
		}
		topic, ok := topics[l.Topic]
		if !ok {
			return n, fmt.Errorf("line %d: unknown topic %q", lineNo, l.Topic)
		}
		m := kafka.Message{Topic: topic, Value: []byte(l.Value)}
		if l.Raw != nil {
			m.Value = []byte(*l.Raw)
		}
		if l.Key != "" {
			m.Key = []byte(l.Key)
		}
		for k, v := range l.Headers {
			m.Headers = append(m.Headers, kafka.Header{Key: k, Value: []byte(v)})
		}
		batch = append(batch, m)
		if len(batch) == 1000 {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return n, err
	}
	return n, flush()
}
