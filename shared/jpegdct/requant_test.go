package jpegdct

import "testing"

// The float requantisation equals the integer definition: nearest, ties
// toward zero, and the dead zone where the output step is ≥ 4× the input's,
// over every coefficient and every pair of 8-bit steps with the output step
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
				if qout >= deadZoneRatio*qin && float64(abs32(num)) < deadZone*float64(qout) {
					want = 0
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
