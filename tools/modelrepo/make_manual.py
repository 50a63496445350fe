#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Makes modelrepo(1) and its bash completion from the CLI's own --help.

    make_manual.py CLI VERSION --man OUT          the man page
    make_manual.py CLI VERSION --completion OUT   the bash completion

The one source is the CLI11 definition in tools/modelrepo: this runs the built program's
`--help`, and each command's (and each nested command's), and writes them out as a man
page and as a bash completion script. Neither can drift from --help: both are made from
it at every build.
"""
import re
import subprocess
import sys

# An option line of CLI11's help: "  -s,--source URI ...   Description" (the description
# may start on the next line when the option's own text is long).
OPTION = re.compile(r"^  (-\S+)(?: (.+))?$")
COMMAND = re.compile(r"^  ([a-z][a-z-]*)\s{2,}(.*)$")
POSITIONAL = re.compile(r"^  ([a-z_]+) ([A-Z]+(?: [A-Z]+)*)\s{2,}(.*)$")


def help_of(cli, path):
    run = subprocess.run([cli] + path + ["--help"], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"})
    if run.returncode != 0:
        sys.exit(f"{' '.join([cli] + path)} --help: exit {run.returncode}: {run.stderr}")
    return run.stdout


def parse(text):
    """The parts of one --help: description, usage, options, positionals, commands,
    and the epilogue (exit status, examples)."""
    lines = text.splitlines()
    out = {"description": [], "usage": "", "options": [], "positionals": [], "commands": [],
           "epilogue": []}
    section = "description"
    column = 30
    for line in lines:
        if line.startswith("Usage: "):
            out["usage"] = line[len("Usage: "):]
            section = "after-usage"
            continue
        if line in ("Options:", "Subcommands:", "Positionals:"):
            section = line[:-1].lower()
            continue
        if section in ("options", "subcommands", "positionals") and line and not line.startswith(" "):
            section = "epilogue"
        if section == "description":
            out["description"].append(line)
        elif section == "options":
            # CLI11 starts descriptions at one column (that of -h,--help's); a longer
            # option has its description on the next line.
            if line.startswith("  -h,--help"):
                column = len(line) - len(line[len("  -h,--help"):].lstrip())
            left, desc = line, ""
            if len(line) > column and line[column - 1] == " " and line[column] != " ":
                left, desc = line[:column], line[column:]
            m = OPTION.match(left.rstrip())
            if m and line.startswith("  -"):
                out["options"].append([m.group(1), m.group(2) or "", desc.strip()])
            elif line.strip() and out["options"]:
                prev = out["options"][-1]
                prev[2] = (prev[2] + " " + line.strip()).strip()
        elif section == "positionals":
            m = POSITIONAL.match(line)
            if m:
                out["positionals"].append([m.group(1), m.group(2), m.group(3)])
        elif section == "subcommands":
            m = COMMAND.match(line)
            if m:
                out["commands"].append([m.group(1), m.group(2)])
        elif section == "epilogue":
            out["epilogue"].append(line)
    return out


def roff(text):
    """Text for a roff line: backslashes, hyphens of options, a leading dot or quote."""
    text = text.replace("\\", "\\e")
    text = re.sub(r"(?<![\w-])-", r"\\-", text)
    if text.startswith((".", "'")):
        text = "\\&" + text
    return text


def option_lines(options):
    out = []
    for flags, arg, desc in options:
        if flags.startswith("-h,--help"):
            continue
        shown = ", ".join("\\fB" + roff(f) + "\\fR" for f in flags.split(","))
        if arg:
            shown += " \\fI" + roff(arg) + "\\fR"
        out += [".TP", shown, roff(desc)]
    return out


def commands_of(cli, path=()):
    """[(path, parsed help)] of every command under `path`, depth first."""
    parsed = parse(help_of(cli, list(path)))
    found = [(list(path), parsed)]
    for name, _ in parsed["commands"]:
        found += commands_of(cli, list(path) + [name])
    return found


def man_page(cli, version, commands):
    top = commands[0][1]
    description = [l for l in top["description"] if l.strip()]
    epilogue = top["epilogue"]
    exit_status = [l for l in epilogue if l.startswith("Exit status")]
    examples = [l.strip() for l in epilogue if l.startswith("  ")]
    out = [
        '.\\" Made by tools/modelrepo/make_manual.py from modelrepo --help: do not edit.',
        f'.TH MODELREPO 1 "" "modelrepo {roff(version)}" "User Commands"',
        ".SH NAME",
        "modelrepo \\- " + roff(description[0][0].lower() + description[0][1:].rstrip(".")),
        ".SH SYNOPSIS",
        ".B modelrepo",
        "[\\fB\\-\\-source\\fR \\fIURI\\fR]... [\\fB\\-\\-json\\fR] \\fICOMMAND\\fR [\\fIOPTIONS\\fR]",
        ".SH DESCRIPTION",
    ]
    for line in description:
        out.append(roff(line))
    out += [".SH OPTIONS"] + option_lines(top["options"])
    out += [".SH COMMANDS"]
    for path, parsed in commands[1:]:
        out.append(".SS " + roff(" ".join(path)))
        out.append(".B modelrepo " + roff(" ".join(path)))
        usage = parsed["usage"].split(" ", 2 + len(path) - 1)
        args = parsed["usage"][len("modelrepo " + " ".join(path)):].strip()
        if args:
            out[-1] += " " + roff(args)
        out.append(".PP")
        out.append(roff(" ".join(l.strip() for l in parsed["description"] if l.strip())))
        for name, kind, desc in parsed["positionals"]:
            out += [".TP", "\\fI" + roff(name) + "\\fR (" + roff(kind.lower()) + ")", roff(desc)]
        out += option_lines(parsed["options"])
    out += [".SH ENVIRONMENT",
            ".TP", "\\fBMODELREPO_SOURCES\\fR",
            "The sources (comma\\-separated URIs) when no \\fB\\-\\-source\\fR is given.",
            ".TP", "\\fBGITHUB_TOKEN\\fR",
            "Sent to GitHub (github:// sources, \\fBpublish\\fR), never to another host.",
            ".SH EXIT STATUS"]
    out += [roff(l) for l in exit_status]
    out += [".SH EXAMPLES", ".nf"]
    out += [roff(l) for l in examples]
    out += [".fi", ".SH SEE ALSO",
            "The documentation in /usr/share/doc/modelrepo and at the project's home; "
            "\\fBsystemctl\\fR(1) for the modelrepo service."]
    return "\n".join(out) + "\n"


def completion(commands):
    """A bash completion: commands at each level, then that command's options."""
    cases = []
    top = [f for flags, _, _ in commands[0][1]["options"] for f in flags.split(",")
           if f.startswith("--") and f not in ("--help", "--version")]
    for path, parsed in commands:
        key = " ".join(path)
        words = [name for name, _ in parsed["commands"]]
        for flags, _, _ in parsed["options"]:
            words += [f for f in flags.split(",") if f.startswith("--")]
        if path:  # the program's own options may follow a command too
            words += [w for w in top if w not in words]
        cases.append(f'        "{key}") words="{" ".join(words)}" ;;')
    takes_value = sorted({f for _, parsed in commands for flags, arg, _ in parsed["options"] if arg
                          for f in flags.split(",")})
    return """# bash completion for modelrepo. Made by tools/modelrepo/make_manual.py from
# modelrepo --help: do not edit.
_modelrepo() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    case " @TAKES_VALUE@ " in
        *" $prev "*) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    esac
    # The command path so far: the words that name commands, in order.
    local path="" word i words
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        case "$word" in -*) continue ;; esac
        case "$(_modelrepo_words "${path% }")" in
            *" $word "*) path="$path$word " ;;
        esac
    done
    words=$(_modelrepo_words "${path% }")
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
_modelrepo_words() {
    local words=""
    case "$1" in
@CASES@
    esac
    echo " $words "
}
complete -F _modelrepo modelrepo
""".replace("@TAKES_VALUE@", " ".join(takes_value)).replace("@CASES@", "\n".join(cases))


def main():
    if len(sys.argv) != 5 or sys.argv[3] not in ("--man", "--completion"):
        sys.exit(__doc__)
    cli, version, what, out = sys.argv[1:]
    commands = commands_of(cli)
    text = man_page(cli, version, commands) if what == "--man" else completion(commands)
    with open(out, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
