# fish completion for orch: commands and subcommands, each command's options (read from
# `orch CMD --help`), option values, definition files, and workflow names and execution ids
# from the local store or the server the command line names.

set -l __orch_commands run validate resume executions logs schedules workflows trigger cancel retry health init server worker keys db config doctor version

# The command words typed so far ("executions list"), without options.
function __orch_cmdwords
    set -l t (commandline -opc)
    set -e t[1]
    set -l out
    for w in $t
        string match -q -- '-*' $w; and break
        set -a out $w
        switch $out[1]
            case executions schedules workflows keys db config
                test (count $out) -ge 2; and break
            case '*'
                break
        end
    end
    printf '%s\n' $out
end

# --server, --api-key, --data-dir, --database-url and their values on the command line.
function __orch_where
    set -l t (commandline -opc)
    set -l n (count $t)
    for i in (seq 2 $n)
        switch $t[$i]
            case --server --api-key --data-dir --database-url
                if test $i -lt $n
                    printf '%s\n' $t[$i] $t[(math $i + 1)]
                end
        end
    end
end

function __orch_workflow_names
    set -l orch (commandline -opc)[1]
    $orch workflows list --names (__orch_where) 2>/dev/null
end

function __orch_execution_ids
    set -l orch (commandline -opc)[1]
    $orch executions list --ids --limit 100 (__orch_where) 2>/dev/null
end

function __orch_options
    set -l orch (commandline -opc)[1]
    $orch (__orch_cmdwords) --help 2>/dev/null | string replace -rf '^\s+(--[a-z][a-z0-9-]*).*' '$1'
end

# Is the command (words) $argv, and the last word typed not an option?
function __orch_is
    test "$(__orch_cmdwords | string join " ")" = "$argv"; or return 1
    set -l t (commandline -opc)
    not string match -q -- '--*' $t[-1]
end

function __orch_prev_is
    set -l t (commandline -opc)
    contains -- $t[-1] $argv
end

complete -c orch -f
complete -c orch -n "not __fish_seen_subcommand_from $__orch_commands" -a "$__orch_commands"
complete -c orch -n "__fish_seen_subcommand_from executions; and not __fish_seen_subcommand_from list show" -a "list show"
complete -c orch -n "__fish_seen_subcommand_from schedules; and not __fish_seen_subcommand_from next validate list show pause resume delete backfill" -a "next validate list show pause resume delete backfill"
complete -c orch -n "__fish_seen_subcommand_from workflows; and not __fish_seen_subcommand_from apply list show delete" -a "apply list show delete"
complete -c orch -n "__fish_seen_subcommand_from keys; and not __fish_seen_subcommand_from create list revoke" -a "create list revoke"
complete -c orch -n "__fish_seen_subcommand_from db; and not __fish_seen_subcommand_from migrate status" -a "migrate status"
complete -c orch -n "__fish_seen_subcommand_from config; and not __fish_seen_subcommand_from show" -a "show"

# Options, as each command's --help lists them.
complete -c orch -n "__fish_seen_subcommand_from $__orch_commands; and string match -q -- '-*' (commandline -ct)" -a "(__orch_options)"

# Option values.
complete -c orch -n "__orch_prev_is --data-dir --register --config --cacert --params-file --tls-cert --tls-key" -F
complete -c orch -n "__orch_prev_is --log-level" -a "error warn info debug"
complete -c orch -n "__orch_prev_is --scope" -a "read write admin"
complete -c orch -n "__orch_prev_is --status" -a "queued running succeeded failed cancelled timed_out"
complete -c orch -n "__orch_prev_is --dst-skipped" -a "shift skip"
complete -c orch -n "__orch_prev_is --dst-repeated" -a "first last both"
complete -c orch -n "__orch_prev_is --workflow" -a "(__orch_workflow_names)"
complete -c orch -n "__orch_prev_is --parent --cursor" -a "(__orch_execution_ids)"

# Arguments.
complete -c orch -n "__orch_is run; or __orch_is validate; or __orch_is workflows apply" -F
complete -c orch -n "__orch_is trigger; or __orch_is workflows show; or __orch_is workflows delete" -a "(__orch_workflow_names)"
complete -c orch -n "__orch_is executions show; or __orch_is logs; or __orch_is cancel; or __orch_is retry; or __orch_is resume" -a "(__orch_execution_ids)"
