package jpegdct

import (
	"math"
	"testing"
)

// The requantisation equals the integer definition: nearest, ties toward
// zero, over every coefficient and every pair of 8-bit steps with the output step
// no finer than the input's.
func TestRequantMatchesIntegerRounding(t *testing.T) {
	for qin := 1; qin <= 255; qin += 3 {
		for qout := qin; qout <= 255; qout += 2 { // toFrame never makes steps finer
			if qin == qout {
				continue
			}
			var a, b [64]uint16
			for k := range a {
				a[k], b[k] = 1, 1 // tables never hold 0
			}
			a[5], b[5] = uint16(qin), uint16(qout)
			r := newRequant(&a, &b)
			for c := -2047; c <= 2047; c++ {
				num, q := int32(c)*int32(qin), int32(qout)
				want := (2*abs32(num) + q - 1) / (2 * q)
				if num < 0 {
					want = -want
				}
				if got := r.apply(5, int16(c)); int32(got) != want {
					t.Fatalf("c=%d qin=%d qout=%d: %d, want %d", c, qin, qout, got, want)
				}
			}
		}
	}
}

func abs32(v int32) int32 {
	if v < 0 {
		return -v
	}
	return v
}

// In a sparse block a ±1 that only just rounds so is dropped; in a busy
// block, or above the zone, or where the steps are close, it stays.
func TestMarginalDroppedInSparseBlocks(t *testing.T) {
	qin, qout := flatTable(10), flatTable(50) // ratio 5: marginal |c| < 4 (0.62·50/10)
	c := &outComp{rq: newRequant(&qin, &qout)}
	close := newRequant(&qin, ptr(flatTable(20))) // ratio 2: nothing marginal
	block := func(vals map[int]int16) []int16 {
		b := make([]int16, 64)
		for k, v := range vals {
			b[k] = v
		}
		return b
	}
	acSymbols := func(c *outComp, blk []int16) int {
		var pred int32
		var freq [2][2][256]int64
		return len(c.blockSymbols(nil, blk, &pred, 0, &freq)) - 1 // minus DC
	}
	tests := []struct {
		name string
		c    *outComp
		blk  []int16
		want int // AC symbols, EOB included
	}{
		{"sparse, marginal", c, block(map[int]int16{0: 40, 9: 3}), 1},                      // 3·10/50 = 0.6 steps: EOB only
		{"sparse, above the zone", c, block(map[int]int16{0: 40, 9: 4}), 2},                // 0.8 steps: 9, EOB
		{"sparse, steps close", &outComp{rq: close}, block(map[int]int16{0: 40, 9: 3}), 2}, // 1.5 steps → 1 (ties down)
		{"busy, marginal", c, block(map[int]int16{1: 99, 2: 99, 3: 99, 4: 99, 5: 99, 9: 3}), 7},
		{"sparse with marginals", c, block(map[int]int16{1: 99, 2: 99, 3: 99, 4: 3, 5: 3}), 4}, // three, EOB
	}
	for _, tt := range tests {
		if got := acSymbols(tt.c, tt.blk); got != tt.want {
			t.Errorf("%s: %d AC symbols, want %d", tt.name, got, tt.want)
		}
	}
}

func flatTable(q uint16) (t [64]uint16) {
	for k := range t {
		t[k] = q
	}
	return t
}

func ptr[T any](v T) *T { return &v }

// halveT multiplies by halve0 only where its entries are nonzero: row 0 at
// k = 0, rows 2, 4, 6 at (1, 7), (2, 6), (3, 5), odd rows everywhere but 4.
func TestHalveSparsity(t *testing.T) {
	used := func(i, k int) bool {
		switch i {
		case 0:
			return k == 0
		case 2:
			return k == 1 || k == 7
		case 4:
			return k == 2 || k == 6
		case 6:
			return k == 3 || k == 5
		}
		return k != 4
	}
	for i := range halve0 {
		for k, v := range halve0[i] {
			if !used(i, k) && math.Abs(v) > 1e-12 {
				t.Errorf("halve0[%d][%d] = %g, which halveT leaves out", i, k, v)
			}
		}
	}
}
