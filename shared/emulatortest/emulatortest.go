// Package emulatortest gates tests that need the local emulators. A test
// package's TestMain asks which emulator variables are missing and sets
// its stack up only when none is; each test that needs the stack calls
// Need, which skips it naming what is missing, or fails it when
// IMGPIPE_REQUIRE_EMULATORS=1 (make test sets it, so a run with the
// emulators down cannot pass by skipping). Tests that need no emulator
// never call Need and always run.
package emulatortest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

// All is every variable the local stack sets.
var All = []string{"GOOGLE_CLOUD_PROJECT", "PUBSUB_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST", "STORAGE_EMULATOR_HOST", "CLOUDTASKS_EMULATOR_HOST"}

// Missing returns why the emulators cannot be used, naming the unset
// variables, or "" when all of vars are set.
func Missing(vars ...string) string {
	var missing []string
	for _, v := range vars {
		if os.Getenv(v) == "" {
			missing = append(missing, v)
		}
	}
	if len(missing) == 0 {
		return ""
	}
	return "needs the local emulators: " + strings.Join(missing, ", ") + " unset (make test starts them)"
}

// Required reports whether a missing emulator fails a test instead of
// skipping it.
func Required() bool { return os.Getenv("IMGPIPE_REQUIRE_EMULATORS") == "1" }

// Need skips t with reason, or fails it when emulators are required; it
// does nothing when reason is "".
func Need(t testing.TB, reason string) {
	t.Helper()
	if reason == "" {
		return
	}
	if Required() {
		t.Fatal(reason)
	}
	t.Skip(reason)
}

// Suffix is a random name suffix, so runs never share data.
func Suffix() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
