package cmd

import (
	"bufio"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// The documentation names commands and make targets that readers copy and run. These tests keep
// them true: every `kubectl overcommit ...` line in the README, CONTRIBUTING.md and docs/ must
// parse with the plugin's real command tree (the subcommand exists, every flag exists for it, the
// positional arguments are accepted), and every `make <target>` must be a target of the Makefile.
// Nothing is run: cobra finds the command and parses the flags, as Execute would before RunE.

// repoRoot is the repository, seen from plugin/cmd.
const repoRoot = "../.."

// docFiles are the documents checked, relative to the repository root.
func docFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files = append([]string{filepath.Join(repoRoot, "README.md"), filepath.Join(repoRoot, "CONTRIBUTING.md")}, files...)
	for i, f := range files {
		files[i], _ = filepath.Rel(repoRoot, f)
	}
	return files
}

// docCheck is what checking one document found.
type docCheck struct {
	problems []string
	// plugin and make count the command lines checked, so a test can tell an extractor that
	// found nothing from documents that are right.
	plugin, make int
}

func TestDocs(t *testing.T) {
	targets, err := makeTargets(filepath.Join(repoRoot, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range docFiles(t) {
		t.Run(name, func(t *testing.T) {
			md, err := os.ReadFile(filepath.Join(repoRoot, name))
			if err != nil {
				t.Fatal(err)
			}
			c := checkDoc(string(md), targets)
			for _, p := range c.problems {
				t.Errorf("%s:%s", name, p)
			}
			if name == "README.md" && (c.plugin == 0 || c.make == 0) {
				t.Errorf("found %d kubectl overcommit and %d make command lines in the README; the extractor is broken", c.plugin, c.make)
			}
		})
	}
}

// TestDocsCommandTable: the README's command table names every command of the plugin.
func TestDocsCommandTable(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range NewCmdOvercommit(genericiooptions.NewTestIOStreamsDiscard()).Commands() {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
			continue
		}
		if row := "| `kubectl overcommit " + c.Name() + "` |"; !strings.Contains(string(readme), row) {
			t.Errorf("the README's command table has no row %q", row)
		}
	}
}

// TestDocsCIRunsTheREADMETestCommand: .ci/run runs exactly the test command the README gives.
func TestDocsCIRunsTheREADMETestCommand(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	ci, err := os.ReadFile(filepath.Join(repoRoot, ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	const command = "make test"
	if !regexp.MustCompile(`(?m)^` + command + `\s+#`).Match(readme) {
		t.Errorf("the README's first commands do not include %q", command)
	}
	lines := strings.Split(strings.TrimSpace(string(ci)), "\n")
	if last := lines[len(lines)-1]; last != command {
		t.Errorf(".ci/run ends with %q, want the README's %q", last, command)
	}
}

// TestDocsChecker proves the checker catches what it is for: a made-up subcommand, flag or
// make target, also inside pipes, line continuations, console transcripts and inline code.
func TestDocsChecker(t *testing.T) {
	targets := map[string]bool{"test": true, "demo": true, "build": true, "tools": true}
	for _, tc := range []struct {
		name string
		md   string
		want []string
		// plugin and make are the command lines the checker should have found.
		plugin, make int
	}{{
		name: "valid commands in every form",
		md: "Run `kubectl overcommit enable node-a --cpu-ratio 1.5` and `make demo KEEP=1`.\n" +
			"```sh\n" +
			"make build tools\n" +
			"kubectl overcommit install --mode policy | kubectl apply -f -   # comment --nope\n" +
			"kubectl get deploy web -o yaml | kubectl overcommit inject -f - --from-cluster | kubectl apply -f -\n" +
			"kubectl overcommit install \\\n  --overlay cert-manager \\\n  --image example/x:v1 > out.yaml\n" +
			"/usr/bin/time bin/kubectl-overcommit savings -o json 2>/dev/null\n" +
			"```\n" +
			"```console\n" +
			"$ kubectl overcommit preview node-a --server -o patch\n" +
			"error: see 'kubectl overcommit --made-up' printed as output, not run\n" +
			"```\n" +
			"| `kubectl overcommit savings --sort-by cpu-extra \\| head` | a table cell |\n",
		plugin: 7, make: 2,
	}, {
		name:   "made-up flag",
		md:     "```sh\nkubectl overcommit enable node-a --cpu-ratoi 2\n```\n",
		want:   []string{"2: `kubectl overcommit enable node-a --cpu-ratoi 2`: unknown flag: --cpu-ratoi"},
		plugin: 1,
	}, {
		name:   "flag of another subcommand",
		md:     "Use `kubectl overcommit savings --force`.\n",
		want:   []string{"1: `kubectl overcommit savings --force`: unknown flag: --force"},
		plugin: 1,
	}, {
		name:   "made-up subcommand",
		md:     "Then `kubectl overcommit frobnicate node-a`.\n",
		want:   []string{"1: `kubectl overcommit frobnicate node-a`: unknown command \"frobnicate\" for \"kubectl overcommit\""},
		plugin: 1,
	}, {
		name:   "arguments a command refuses",
		md:     "```sh\nkubectl overcommit install extra\n```\n",
		want:   []string{"2: `kubectl overcommit install extra`: unknown command \"extra\" for \"kubectl overcommit install\""},
		plugin: 1,
	}, {
		name:   "made-up flag after a line continuation",
		md:     "```sh\nkubectl overcommit install \\\n  --mode policy \\\n  --made-up | kubectl apply -f -\n```\n",
		want:   []string{"2: `kubectl overcommit install --mode policy --made-up`: unknown flag: --made-up"},
		plugin: 1,
	}, {
		name:   "made-up flag after a pipe",
		md:     "```sh\nkubectl get pod p -o yaml | kubectl overcommit inject -f - --from-clusterr\n```\n",
		want:   []string{"2: `kubectl overcommit inject -f - --from-clusterr`: unknown flag: --from-clusterr"},
		plugin: 1,
	}, {
		name:   "made-up flag in a console transcript",
		md:     "```console\n$ kubectl overcommit disable node-a --forse\nnode/node-a overcommit disabled\n```\n",
		want:   []string{"2: `kubectl overcommit disable node-a --forse`: unknown flag: --forse"},
		plugin: 1,
	}, {
		name:   "flag without its value",
		md:     "Try `kubectl overcommit preview -o`.\n",
		want:   []string{"1: `kubectl overcommit preview -o`: flag needs an argument: 'o' in -o"},
		plugin: 1,
	}, {
		name:   "inline code across a line break",
		md:     "Run `kubectl overcommit enable -l pool=batch\n--cpu-ratios 2` to opt a pool in.\n",
		want:   []string{"1: `kubectl overcommit enable -l pool=batch --cpu-ratios 2`: unknown flag: --cpu-ratios"},
		plugin: 1,
	}, {
		name: "made-up make target",
		md:   "Run `make tset` or\n```sh\nmake build frobnicate VERSION=v1\n```\n",
		want: []string{"1: `make tset`: no target \"tset\" in the Makefile", "3: `make build frobnicate VERSION=v1`: no target \"frobnicate\" in the Makefile"},
		make: 2,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			c := checkDoc(tc.md, targets)
			if diff := cmp.Diff(tc.want, c.problems); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			if c.plugin != tc.plugin || c.make != tc.make {
				t.Errorf("checked %d kubectl overcommit and %d make command lines, want %d and %d", c.plugin, c.make, tc.plugin, tc.make)
			}
		})
	}
}

// TestMakeTargets: the Makefile's targets are read from its rule lines, not its variables.
func TestMakeTargets(t *testing.T) {
	mk := filepath.Join(t.TempDir(), "Makefile")
	content := "SHELL := /bin/bash\nVERSION ?= dev\n.PHONY: all build\n\nall: build\n" +
		"build: ## Build.\n\tgo build ./...\n$(BIN)/tool:\n\tgo install x\nimage krew: build\n# comment: not a rule\n"
	if err := os.WriteFile(mk, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := makeTargets(mk)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"all": true, "build": true, "image": true, "krew": true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("targets (-want +got):\n%s", diff)
	}
}

// checkDoc checks every command line of a markdown document; problems are "line: `command`: why".
func checkDoc(md string, targets map[string]bool) docCheck {
	var c docCheck
	for _, s := range snippets(md) {
		for _, words := range shellCommands(s.text) {
			line := strings.Join(words, " ")
			switch {
			case len(words) >= 2 && words[0] == "kubectl" && words[1] == "overcommit":
				c.plugin++
				if err := parsePluginArgs(words[2:]); err != nil {
					c.problems = append(c.problems, fmt.Sprintf("%d: `%s`: %v", s.line, line, err))
				}
			case path.Base(words[0]) == "kubectl-overcommit":
				c.plugin++
				if err := parsePluginArgs(words[1:]); err != nil {
					c.problems = append(c.problems, fmt.Sprintf("%d: `%s`: %v", s.line, line, err))
				}
			case words[0] == "make":
				c.make++
				for _, w := range words[1:] {
					if strings.HasPrefix(w, "-") || strings.Contains(w, "=") || targets[w] {
						continue // make's own flags and variable assignments
					}
					c.problems = append(c.problems, fmt.Sprintf("%d: `%s`: no target %q in the Makefile", s.line, line, w))
				}
			}
		}
	}
	return c
}

// parsePluginArgs finds the subcommand and parses its flags and arguments with a fresh command
// tree, as Execute does before it runs anything.
func parsePluginArgs(args []string) error {
	root := NewCmdOvercommit(genericiooptions.NewTestIOStreamsDiscard())
	cmd, rest, err := root.Find(args)
	if err != nil {
		return err
	}
	cmd.InitDefaultHelpFlag() // -h is added by Execute; docs may show it
	if err := cmd.ParseFlags(rest); err != nil {
		return err
	}
	return cmd.ValidateArgs(cmd.Flags().Args())
}

// snippet is text that may hold command lines, and the line of the document it starts on.
type snippet struct {
	line int
	text string
}

var (
	fence = regexp.MustCompile("^\\s*(```|~~~)\\s*([A-Za-z0-9_-]*)")
	// inlineCode is a code span; it may run over a line break inside a paragraph.
	inlineCode = regexp.MustCompile("`([^`]+)`")
)

// snippets returns every line of the fenced code blocks (in console blocks only the `$ ` prompt
// lines, as the rest is output), with line continuations joined, and every inline code span
// outside them.
func snippets(md string) []snippet {
	var (
		out     []snippet
		prose   []string // the document with code blocks blanked, so line numbers stay right
		inBlock bool
		console bool
		pending *snippet // a command line ending in a backslash, continued on the next line
	)
	lines := strings.Split(md, "\n")
	for i, l := range lines {
		if m := fence.FindStringSubmatch(l); m != nil {
			inBlock = !inBlock
			console = inBlock && (m[2] == "console" || m[2] == "shell-session")
			pending = nil
			prose = append(prose, "")
			continue
		}
		if !inBlock {
			prose = append(prose, l)
			continue
		}
		prose = append(prose, "")
		if pending == nil {
			if console {
				cmd, ok := strings.CutPrefix(strings.TrimSpace(l), "$ ")
				if !ok {
					continue
				}
				l = cmd
			}
			pending = &snippet{line: i + 1}
		}
		text, continued := strings.CutSuffix(strings.TrimRight(l, " \t"), "\\")
		pending.text += text
		if continued {
			pending.text += " "
			continue
		}
		out = append(out, *pending)
		pending = nil
	}
	if pending != nil {
		out = append(out, *pending)
	}
	text := strings.Join(prose, "\n")
	for _, m := range inlineCode.FindAllStringSubmatchIndex(text, -1) {
		code := text[m[2]:m[3]]
		// A pipe in a table cell is written \|; the reader sees |.
		code = strings.ReplaceAll(strings.ReplaceAll(code, "\\|", "|"), "\n", " ")
		out = append(out, snippet{line: strings.Count(text[:m[0]], "\n") + 1, text: code})
	}
	slices.SortStableFunc(out, func(a, b snippet) int { return a.line - b.line })
	return out
}

// shellCommands splits a line of shell into its simple commands (at pipes, lists, subshells and
// backquotes) and each into words, with quotes removed, comments and redirections dropped, and
// leading variable assignments, prompts and wrappers such as time skipped.
func shellCommands(line string) [][]string {
	var (
		cmds         [][]string
		words        []string
		word         strings.Builder
		inWord       bool
		quote        rune
		dropNextWord bool
	)
	endWord := func() {
		if !inWord {
			return
		}
		if dropNextWord {
			dropNextWord = false
		} else {
			words = append(words, word.String())
		}
		word.Reset()
		inWord = false
	}
	endCommand := func() {
		endWord()
		if w := trimCommand(words); len(w) > 0 {
			cmds = append(cmds, w)
		}
		words = nil
	}
	rs := []rune(line)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else if r == '\\' && quote == '"' && i+1 < len(rs) {
				i++
				word.WriteRune(rs[i])
			} else {
				word.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == '\\' && i+1 < len(rs):
			i++
			word.WriteRune(rs[i])
			inWord = true
		case r == ' ' || r == '\t':
			endWord()
		case r == '#' && !inWord:
			endCommand()
			return cmds
		case r == '|' || r == ';' || r == '&' || r == '(' || r == ')' || r == '`':
			endCommand()
		case r == '$' && i+1 < len(rs) && rs[i+1] == '(':
			endCommand()
			i++
		case r == '>' || r == '<':
			if inWord && strings.Trim(word.String(), "0123456789") == "" {
				word.Reset() // the file descriptor of 2>
				inWord = false
			}
			endWord()
			if i+1 < len(rs) && (rs[i+1] == '&' || rs[i+1] == '>') {
				i++ // 2>&1, >>
			}
			dropNextWord = true
		default:
			word.WriteRune(r)
			inWord = true
		}
	}
	endCommand()
	return cmds
}

// trimCommand skips what comes before the command itself: a console prompt, variable
// assignments, and commands that run the next one.
func trimCommand(words []string) []string {
	for len(words) > 0 {
		w := words[0]
		if w == "$" || assignment.MatchString(w) || slices.Contains(wrappers, w) {
			words = words[1:]
			continue
		}
		break
	}
	return words
}

var (
	assignment = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)
	wrappers   = []string{"time", "/usr/bin/time", "env", "sudo", "exec", "command"}
)

// makeTargets reads the targets of a Makefile's rule lines ("a b: prerequisites"), leaving out
// variable assignments, special targets such as .PHONY and targets built from variables.
func makeTargets(file string) (map[string]bool, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	rule := regexp.MustCompile(`^([A-Za-z0-9][A-Za-z0-9_./-]*(?:[ \t]+[A-Za-z0-9][A-Za-z0-9_./-]*)*)[ \t]*:(?:[^=]|$)`)
	targets := map[string]bool{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		if m := rule.FindStringSubmatch(s.Text()); m != nil {
			for _, t := range strings.Fields(m[1]) {
				targets[t] = true
			}
		}
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", file, err)
	}
	return targets, nil
}
