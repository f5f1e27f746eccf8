package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"testing"
)

// The man page and the guide document exactly the options the program prints.
func TestOptionsDocumented(t *testing.T) {
	root, plugin := os.Getenv("K8S_SOURCE_ROOT"), os.Getenv("IOVD_DEVICE_PLUGIN")
	if root == "" || plugin == "" {
		t.Skip("K8S_SOURCE_ROOT, IOVD_DEVICE_PLUGIN not set: run through meson test --suite k8s")
	}
	help, err := exec.Command(plugin, "-h").CombinedOutput()
	if err != nil {
		t.Fatalf("%s -h: %v: %s", plugin, err, help)
	}
	printed := options(regexp.MustCompile(`(?m)^\s+-([a-z][a-z-]+)`), string(help))
	if len(printed) < 5 {
		t.Fatalf("-h printed options %v: expected the program's flags", printed)
	}
	docs := map[string]*regexp.Regexp{
		"docs/man/iovd-device-plugin.1.scd": regexp.MustCompile(`(?m)^\*--([a-z][a-z-]+)\*`),
		"docs/kubernetes.md":                regexp.MustCompile("(?m)^\\| `--([a-z][a-z-]+)"),
	}
	for file, re := range docs {
		raw, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			t.Fatal(err)
		}
		if got := options(re, string(raw)); !equal(got, printed) {
			t.Errorf("%s documents %v, the program prints %v", file, got, printed)
		}
	}
}

func options(re *regexp.Regexp, text string) []string {
	var out []string
	for _, m := range re.FindAllStringSubmatch(text, -1) {
		out = append(out, m[1])
	}
	sort.Strings(out)
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
