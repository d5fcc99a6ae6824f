package batch_test

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/fault"
)

// The API reference (functions/API.md) lists every reason code and every
// upload limit.
func TestReferenceListsReasonsAndLimits(t *testing.T) {
	b, err := os.ReadFile("../../functions/API.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, r := range batch.Reasons {
		if !strings.Contains(doc, "| `"+r+"` |") {
			t.Errorf("functions/API.md's table of reason codes lacks %s", r)
		}
	}
	if fault.ReasonOf(errors.New("no reason")) != batch.ReasonInternal {
		t.Errorf("an error without a reason records %q, not batch.ReasonInternal", fault.ReasonOf(errors.New("x")))
	}
	lim := batch.DefaultLimits
	for what, want := range map[string]string{
		"problems shown":       "up to " + strconv.Itoa(lim.MaxProblemsShow) + ", then a count",
		"characters in a cell": "at most " + strconv.Itoa(lim.MaxFieldLength) + " characters",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("functions/API.md does not say %q (%s)", want, what)
		}
	}
}
