package functions

import (
	"runtime/debug"
	"testing"

	"github.com/imgpipe/imgpipe/shared/batch"
)

// compressImage's soft memory limit is its memory rule: 256 MiB, and for
// each image at once its share (432 MiB at the default limits) and a
// waiting input (25 MiB); an operator's GOMEMLIMIT is left alone.
func TestCompressMemoryLimitFollowsTheRule(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(before)
	t.Setenv("GOMEMLIMIT", "")
	compressMemoryLimit(4, batch.DefaultImageLimits)
	if got, want := debug.SetMemoryLimit(-1), int64(256<<20+4*(8*50_000_000+2*(25<<20)+25<<20)); got != want {
		t.Errorf("soft memory limit %d, want %d", got, want)
	}
	debug.SetMemoryLimit(before)
	t.Setenv("GOMEMLIMIT", "3GiB")
	compressMemoryLimit(4, batch.DefaultImageLimits)
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("soft memory limit %d with GOMEMLIMIT set, want it left at %d", got, before)
	}
}
