package cloudlog

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestSeverityAndMessage(t *testing.T) {
	var buf bytes.Buffer
	New(&buf).Warn("disk low", "free", 3)
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if m["severity"] != "WARNING" || m["message"] != "disk low" || m["free"] != float64(3) {
		t.Errorf("entry %v", m)
	}
}
