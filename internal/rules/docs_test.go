package rules

import (
	"os"
	"strings"
	"testing"
)

// docRow is a built-in rule's row in docs/RULES.md.
func docRow(b Info) string {
	return "| `" + b.Name + "` | " + string(b.Severity) + " | " + b.Description + " | " + strings.Join(b.Techniques, ", ") + " |"
}

// TestRulesDocumented: docs/RULES.md lists every built-in rule with its
// severity, description and ATT&CK techniques as the code has them, and
// no rule that is not one.
func TestRulesDocumented(t *testing.T) {
	b, err := os.ReadFile("../../docs/RULES.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	var want []string
	for _, r := range Builtins() {
		if len(r.Techniques) == 0 {
			t.Errorf("rule %s names no ATT&CK technique", r.Name)
		}
		row := docRow(r)
		want = append(want, row)
		if !strings.Contains(doc, "\n"+row+"\n") {
			t.Errorf("docs/RULES.md lacks the row of %s", r.Name)
		}
	}
	rows := 0
	start := strings.Index(doc, "## Built-in rules")
	end := strings.Index(doc[start+1:], "\n## ")
	for _, line := range strings.Split(doc[start:start+1+end], "\n") {
		if strings.HasPrefix(line, "| `") {
			rows++
		}
	}
	if rows != len(want) {
		t.Errorf("docs/RULES.md lists %d built-in rules, the code has %d", rows, len(want))
	}
	if t.Failed() {
		t.Logf("the rows, as the code has them:\n%s", strings.Join(want, "\n"))
	}
}
