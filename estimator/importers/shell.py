"""Reading a launch script the way bash would, without running anything.

Launch scripts (Megatron-LM examples, MindSpeed-LLM examples, cluster wrappers) build the
training command from shell variables, arrays and simple conditionals. This module
evaluates the parts that decide the command line -- assignments (``TP=8``,
``export``, ``ARGS=( ... )``, ``ARGS+=( ... )``), parameter expansion (``$TP``, ``${TP}``,
``${TP:-8}``, ``${ARR[@]}``), integer arithmetic (``$((A*B))``), quoting and word
splitting, ``if``/``elif``/``else`` on string and integer tests -- and returns every command
with its arguments.

Nothing is executed: command substitution (``$(...)``), loops, ``case``, functions, file
tests and ``source`` are not evaluated; each is reported in ``notes``, and a value that
depends on one carries a marker (:data:`UNRESOLVED`) so the caller can refuse to use it.
"""
import ast
import fnmatch
import operator
import re
import warnings
from dataclasses import dataclass, field
from typing import Optional, Union

from estimator.errors import InputError
from estimator.importers.shell_syntax import (_ASSIGN, _NAME, UNRESOLVED, AndOr, ArrayAssign, Group, If,
                                              Simple, Skipped, Word, _Lexer, _Parser)

__all__ = ["UNRESOLVED", "Command", "ShellResult", "evaluate_script", "evaluate_argv"]


def _tdiv(a: int, b: int) -> int:
    """Integer division truncating toward zero, as in bash."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


# ------------------------------------------------------------------------- evaluation
class _Exit(Exception):
    pass


_ARITH_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
              ast.Mod: lambda a, b: a - b * _tdiv(a, b) if b else None,
              ast.Div: lambda a, b: _tdiv(a, b) if b else None,
              ast.FloorDiv: lambda a, b: _tdiv(a, b) if b else None}


@dataclass
class Command:
    line: int
    argv: list[str]


@dataclass
class ShellResult:
    commands: list[Command] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    env: dict = field(default_factory=dict)


class _Eval:
    def __init__(self, env: Optional[dict] = None):
        self.env: dict = dict(env or {})
        self.res = ShellResult()
        self.unset_used: set[str] = set()

    def note(self, line: int, msg: str):
        text = f"line {line}: {msg}"
        if text not in self.res.notes:
            self.res.notes.append(text)

    # -- expansion -------------------------------------------------------------------
    def _var(self, name: str, line: int) -> Optional[Union[str, list]]:
        if name in self.env:
            return self.env[name]
        if name.isdigit() or name in "@*#":
            return "0" if name == "#" else None
        if name in ("?", "$", "!", "-"):
            return UNRESOLVED + "$" + name + UNRESOLVED
        self.unset_used.add(name)
        return None

    @staticmethod
    def _scalar(v) -> str:
        if v is None:
            return ""
        if isinstance(v, list):
            return v[0] if v else ""
        return v

    def _word_text(self, text: str, line: int) -> str:
        """Expand a fragment (a default value, an arithmetic body) to one string."""
        lex = _Lexer(text)
        try:
            toks = lex.tokens()
        except InputError:
            return UNRESOLVED + text + UNRESOLVED
        out = []
        for t in toks:
            if isinstance(t, Word):
                out.append(self.expand_join(t))
        return " ".join(out)

    def _param(self, inner: str, line: int):
        """${...}: returns a str, a list (array in '@' form) or None."""
        if inner.startswith("#") and _NAME.fullmatch(inner[1:]):
            v = self._var(inner[1:], line)
            return str(len(self._scalar(v)))
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)\[([@*])\]", inner)
        if m:
            v = self._var(m.group(1), line)
            if v is None:
                return []
            return list(v) if isinstance(v, list) else [v]
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)\[(\d+)\]", inner)
        if m:
            v = self._var(m.group(1), line)
            idx = int(m.group(2))
            if isinstance(v, list):
                return v[idx] if idx < len(v) else ""
            return (v or "") if idx == 0 else ""
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*|\d+|[@*#?$!])(?:(:?)([-=+?])(.*))?", inner, re.S)
        if not m:
            self.note(line, f"expansion ${{{inner}}} not evaluated")
            return UNRESOLVED + "${" + inner + "}" + UNRESOLVED
        name, colon, op, word = m.groups()
        v = self._var(name, line)
        if isinstance(v, list):
            v = v[0] if v else ""
        empty = v is None or (colon and v == "")
        if op is None:
            return v if v is not None else ""
        if op in "-=":
            if empty:
                val = self._word_text(word, line)
                if op == "=" and _NAME.fullmatch(name):
                    self.env[name] = val
                return val
            return v
        if op == "+":
            return "" if empty else self._word_text(word, line)
        if op == "?":
            return v if not empty else UNRESOLVED + name + UNRESOLVED
        return ""

    def _arith(self, body: str, line: int) -> str:
        text = self._word_text(body, line) if "$" in body else body
        if UNRESOLVED in text:
            return UNRESOLVED + "$((" + body + "))" + UNRESOLVED
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tree = ast.parse(text.strip(), mode="eval")
            return str(self._arith_node(tree.body, line))
        except (SyntaxError, ValueError, TypeError, RecursionError, OverflowError):
            self.note(line, f"arithmetic $(({body})) not evaluated")
            return UNRESOLVED + "$((" + body + "))" + UNRESOLVED

    def _arith_node(self, n, line: int) -> int:
        if isinstance(n, ast.Constant) and isinstance(n.value, int) and not isinstance(n.value, bool):
            return n.value
        if isinstance(n, ast.Name):
            v = self._scalar(self._var(n.id, line)).strip()
            if not v:
                return 0
            if re.fullmatch(r"-?\d+", v):
                return int(v)
            raise ValueError(v)
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, (ast.USub, ast.UAdd)):
            v = self._arith_node(n.operand, line)
            return -v if isinstance(n.op, ast.USub) else v
        if isinstance(n, ast.BinOp):
            a, b = self._arith_node(n.left, line), self._arith_node(n.right, line)
            if isinstance(n.op, ast.Pow):
                if b < 0 or b > 64 or abs(a) > 2 ** 32:
                    raise ValueError("exponent")
                r = a ** b
            elif type(n.op) in _ARITH_OPS:
                r = _ARITH_OPS[type(n.op)](a, b)
                if r is None:
                    raise ValueError("division by zero")
            else:
                raise ValueError("operator")
            if abs(r) >= 2 ** 63:
                raise ValueError("overflow")
            return r
        raise ValueError("unsupported")

    def _exp(self, raw: str, line: int):
        if raw.startswith("$(("):
            return self._arith(raw[3:-2], line)
        if raw.startswith("$(") or raw.startswith("`"):
            self.note(line, f"command substitution {raw[:40]} not run")
            return UNRESOLVED + raw + UNRESOLVED
        if raw.startswith("${"):
            return self._param(raw[2:-1], line)
        name = raw[1:]
        if name in ("@", "*"):
            return []
        v = self._var(name, line)
        return self._scalar(v) if not isinstance(v, list) else (v[0] if v else "")

    def expand(self, w: Word) -> list[str]:
        """Expand a word into fields (parameter expansion, arithmetic, splitting, quotes)."""
        if isinstance(w, ArrayAssign):     # only meaningful to declare/export, handled there
            return []
        chunks = []  # ('q', text) / ('u', text) / ('break',)
        for p in w.parts:
            if p[0] != "exp":
                chunks.append(("q", p[1]))
                continue
            v = self._exp(p[1], w.line)
            quoted = p[2]
            if isinstance(v, list):
                for j, el in enumerate(v):
                    if j:
                        chunks.append(("break",) if quoted else ("u", " "))
                    chunks.append(("q" if quoted else "u", el))
                if quoted and not v:
                    chunks.append(("none",))
            else:
                chunks.append(("q" if quoted else "u", v))
        fields: list[str] = []
        cur: Optional[str] = None
        for ch in chunks:
            if ch[0] == "q":
                cur = (cur or "") + ch[1]
            elif ch[0] == "break":
                if cur is not None:
                    fields.append(cur)
                cur = ""
            elif ch[0] == "u":
                pieces = re.split(r"[ \t\n]+", ch[1])
                for j, piece in enumerate(pieces):
                    if j > 0 and cur is not None:
                        fields.append(cur)
                        cur = None
                    if piece:
                        cur = (cur or "") + piece
        if cur is not None:
            fields.append(cur)
        return fields

    def expand_join(self, w: Word) -> str:
        """Expansion without word splitting (assignment values)."""
        if isinstance(w, ArrayAssign):
            return UNRESOLVED
        out = []
        for p in w.parts:
            if p[0] != "exp":
                out.append(p[1])
                continue
            v = self._exp(p[1], w.line)
            out.append(" ".join(v) if isinstance(v, list) else v)
        return "".join(out)

    # -- assignments -----------------------------------------------------------------
    def assign(self, a, line: int):
        if isinstance(a, ArrayAssign):
            vals = [f for w in a.words for f in self.expand(w)]
            old = self.env.get(a.name)
            if a.append:
                base = old if isinstance(old, list) else ([old] if old else [])
                self.env[a.name] = base + vals
            else:
                self.env[a.name] = vals
            return
        first = a.parts[0][1]
        m = _ASSIGN.match(first)
        name, append = m.group(1), bool(m.group(2))
        rest = Word([("lit", first[m.end():])] + a.parts[1:], a.line)
        val = self.expand_join(rest)
        old = self.env.get(name)
        if append:
            if isinstance(old, list):
                self.env[name] = old + [val]
            else:
                self.env[name] = (old or "") + val
        else:
            self.env[name] = val

    # -- tests -----------------------------------------------------------------------
    def test(self, args: list[str], double: bool, line: int) -> Optional[bool]:
        """Tri-state evaluation of [ ], [[ ]] and test: True, False, or None (unknown)."""
        if any(UNRESOLVED in a for a in args):
            return None
        pos = 0

        def peek():
            return args[pos] if pos < len(args) else None

        def take():
            nonlocal pos
            pos += 1
            return args[pos - 1]

        def or_expr():
            v = and_expr()
            while peek() in ("-o", "||"):
                take()
                r = and_expr()
                v = True if (v is True or r is True) else (None if (v is None or r is None) else False)
            return v

        def and_expr():
            v = not_expr()
            while peek() in ("-a", "&&"):
                take()
                r = not_expr()
                v = False if (v is False or r is False) else (None if (v is None or r is None) else True)
            return v

        def not_expr():
            if peek() == "!":
                take()
                v = not_expr()
                return None if v is None else not v
            return primary()

        def primary():
            a = peek()
            if a is None:
                return False
            if a == "(":
                take()
                v = or_expr()
                if peek() == ")":
                    take()
                return v
            if a in ("-z", "-n") and pos + 1 < len(args):
                take()
                s = take()
                return (s == "") if a == "-z" else (s != "")
            if a.startswith("-") and len(a) == 2 and pos + 1 < len(args) and \
                    (pos + 2 >= len(args) or args[pos + 2] in (")", "-a", "-o", "&&", "||")):
                take()
                take()
                return None          # file tests and the like: not evaluated
            if pos + 1 < len(args) and args[pos + 1] in _BINOPS:
                left = take()
                op = take()
                right = take() if pos < len(args) else ""
                return _BINOPS[op](left, right, double)
            take()
            return a != ""

        try:
            v = or_expr()
        except (ValueError, IndexError):
            return None
        return v if pos >= len(args) else None

    # -- execution -------------------------------------------------------------------
    def run_items(self, items: list) -> Optional[bool]:
        status: Optional[bool] = True
        for it in items:
            status = self.run_andor(it)
        return status

    def run_andor(self, node: AndOr) -> Optional[bool]:
        status = self.run_pipeline(node.first)
        for op, pipe in node.rest:
            if status is None:
                break
            if (op == "&&") == bool(status):
                status = self.run_pipeline(pipe)
        if node.negate and status is not None:
            status = not status
        return status

    def run_pipeline(self, cmds: list) -> Optional[bool]:
        status: Optional[bool] = True
        for c in cmds:
            status = self.run_node(c)
        return status

    def run_node(self, n) -> Optional[bool]:
        if isinstance(n, Simple):
            return self.run_simple(n)
        if isinstance(n, Group):
            return self.run_items(n.body)
        if isinstance(n, Skipped):
            if n.effect:
                self.note(n.line, f"{n.what} not evaluated (the arguments or variables it sets are unknown)")
            return True
        if isinstance(n, If):
            for cond, body in n.clauses:
                c = self.run_items(cond)
                if c is None:
                    if self._has_effect(n):
                        self.note(n.line, "'if' condition not evaluated; its branches were skipped")
                    return True
                if c:
                    return self.run_items(body)
            if n.orelse is not None:
                return self.run_items(n.orelse)
            return True
        return True

    def _has_effect(self, n) -> bool:
        if isinstance(n, Simple):
            if n.assigns:
                return True
            words = [w for w in n.words if isinstance(w, Word)]
            return bool(words) and any(
                w.parts and w.parts[0][0] in ("lit", "sq", "dq") and w.parts[0][1].startswith("-")
                for w in words[1:]) and (words[0].plain() not in ("echo", "printf", "[", "[[", "test"))
        if isinstance(n, AndOr):
            return any(self._has_effect(c) for c in n.first) or any(
                self._has_effect(c) for _, p in n.rest for c in p)
        if isinstance(n, Group):
            return any(self._has_effect(c) for c in n.body)
        if isinstance(n, If):
            return any(self._has_effect(c) for _, b in n.clauses for c in b) or \
                any(self._has_effect(c) for c in (n.orelse or []))
        if isinstance(n, Skipped):
            return n.effect
        return False

    def run_simple(self, n: Simple) -> Optional[bool]:
        if not n.words:
            for a in n.assigns:
                self.assign(a, n.line)
            return True
        if isinstance(n.words[0], Word) and n.words[0].plain() == "[[":
            args = [self.expand_join(w) for w in n.words[1:]]       # no word splitting in [[ ]]
            return self.test(args, True, n.line)
        argv = [f for w in n.words for f in self.expand(w)]
        if not argv:
            return True
        cmd = argv[0]
        if cmd in ("export", "declare", "typeset", "local", "readonly"):
            for w in n.words[1:]:
                if isinstance(w, ArrayAssign):
                    self.assign(w, n.line)
                elif w.parts and w.parts[0][0] == "lit" and _ASSIGN.match(w.parts[0][1]):
                    self.assign(w, n.line)
            return True
        if cmd in ("[", "test"):
            args = argv[1:]
            if cmd == "[" and args and args[-1] == "]":
                args = args[:-1]
            return self.test(args, False, n.line)
        if cmd in ("true", ":"):
            return True
        if cmd == "false":
            return False
        if cmd == "exit":
            raise _Exit()
        if cmd == "unset":
            for name in argv[1:]:
                self.env.pop(name, None)
            return True
        if cmd in ("source", "."):
            self.note(n.line, f"'{cmd} {' '.join(argv[1:])[:60]}' not followed (what it sets is unknown)")
            return True
        self.res.commands.append(Command(n.line, argv))
        return True


def _cmp_int(f):
    def g(a, b, double):
        a, b = a.strip(), b.strip()
        if not (re.fullmatch(r"-?\d+", a) and re.fullmatch(r"-?\d+", b)):
            raise ValueError("not integers")
        return f(int(a), int(b))
    return g


def _eq(a, b, double):
    return fnmatch.fnmatchcase(a, b) if double else a == b


_BINOPS = {"=": _eq, "==": _eq, "!=": lambda a, b, d: not _eq(a, b, d),
           "-eq": _cmp_int(operator.eq), "-ne": _cmp_int(operator.ne), "-lt": _cmp_int(operator.lt),
           "-le": _cmp_int(operator.le), "-gt": _cmp_int(operator.gt), "-ge": _cmp_int(operator.ge),
           "<": lambda a, b, d: a < b, ">": lambda a, b, d: a > b}


def evaluate_script(text: str, env: Optional[dict] = None) -> ShellResult:
    """Evaluate a shell script's assignments and conditionals; return its commands.

    ``env`` gives variables the script reads from its environment (none by default:
    unset variables expand to nothing, as in bash).
    """
    lex = _Lexer(text.replace("\r\n", "\n"))
    toks = lex.tokens()
    parser = _Parser(toks)
    items, stop = parser.parse_list(set())
    if stop is not None or parser.i < len(toks):
        raise parser.error("unexpected token")
    ev = _Eval(env)
    try:
        ev.run_items(items)
    except _Exit:
        pass
    ev.res.env = ev.env
    ev.res.notes[:0] = lex.notes
    return ev.res


def evaluate_argv(argv: list[str]) -> ShellResult:
    """An already split argument list: one command, nothing to expand."""
    if not all(isinstance(a, str) for a in argv):
        raise InputError("launch args: every argument must be a string")
    return ShellResult(commands=[Command(1, list(argv))])
