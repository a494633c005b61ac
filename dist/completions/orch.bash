# bash completion for orch                                        -*- shell-script -*-
# Commands and subcommands, each command's options (read from `orch CMD --help`), option
# values, definition files, and workflow names and execution ids from the local store or
# the server the command line names (`orch workflows list --names`,
# `orch executions list --ids`).

_orch_commands="run validate resume executions logs schedules workflows trigger cancel retry health init server worker keys db config doctor version"

_orch_subcommands()
{
    case $1 in
        executions) echo "list show" ;;
        schedules) echo "next validate list show pause resume delete backfill" ;;
        workflows) echo "apply list show delete" ;;
        keys) echo "create list revoke" ;;
        db) echo "migrate status" ;;
        config) echo "show" ;;
    esac
}

# The options of command words "$@", as --help lists them (one per line).
_orch_options()
{
    "${COMP_WORDS[0]}" "$@" --help 2>/dev/null |
        sed -n 's/^[[:space:]]\{1,\}\(--[a-z][a-z0-9-]*\).*/\1/p'
}

# Does option $2 of command words $1 take a value ("  --limit N  ...")? The global options
# with a value take it even where a command's --help leaves them out (they are accepted).
_orch_takes_value()
{
    case $2 in
        --server | --api-key | --cacert | --data-dir | --database-url | --log-level | --config) return 0 ;;
    esac
    # shellcheck disable=SC2086
    "${COMP_WORDS[0]}" $1 --help 2>/dev/null | grep -q -- "^[[:space:]]\{1,\}$2 [^ ]"
}

# What the command line says about where to look: --server, --api-key, --data-dir,
# --database-url with their values (before or after the word completed), into the array
# _orch_where.
_orch_collect_where()
{
    local i w
    _orch_where=()
    for ((i = 2; i + 1 < ${#COMP_WORDS[@]}; i++)); do
        ((i == COMP_CWORD || i + 1 == COMP_CWORD)) && continue
        w=${COMP_WORDS[i]}
        case $w in
            --server | --api-key | --data-dir | --database-url)
                _orch_where+=("$w" "${COMP_WORDS[i + 1]}")
                ;;
        esac
    done
}

_orch_workflow_names()
{
    local _orch_where
    _orch_collect_where
    "${COMP_WORDS[0]}" workflows list --names "${_orch_where[@]}" 2>/dev/null
}

_orch_execution_ids()
{
    local _orch_where
    _orch_collect_where
    "${COMP_WORDS[0]}" executions list --ids --limit 100 "${_orch_where[@]}" 2>/dev/null
}

# Positional arguments before the one being completed (options and their values skipped).
_orch_npos()
{
    local i w n=0 words=$1 start=$2
    for ((i = start; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        if [[ $w == --*=* ]]; then
            continue
        elif [[ $w == --* ]]; then
            _orch_takes_value "$words" "$w" && ((i++))
        else
            ((n++))
        fi
    done
    echo "$n"
}

_orch()
{
    local cur prev cmd sub subs words start n
    COMPREPLY=()
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD - 1]}

    if ((COMP_CWORD == 1)); then
        mapfile -t COMPREPLY < <(compgen -W "$_orch_commands --help --version" -- "$cur")
        return
    fi
    cmd=${COMP_WORDS[1]}
    subs=$(_orch_subcommands "$cmd")
    words=$cmd
    start=2
    if [[ -n $subs ]]; then
        if ((COMP_CWORD == 2)); then
            mapfile -t COMPREPLY < <(compgen -W "$subs" -- "$cur")
            return
        fi
        sub=${COMP_WORDS[2]}
        words="$cmd $sub"
        start=3
    fi

    case $prev in
        --data-dir | --register | --config | --cacert | --params-file | --tls-cert | --tls-key)
            compopt -o filenames 2>/dev/null
            mapfile -t COMPREPLY < <(compgen -f -- "$cur")
            return
            ;;
        --log-level)
            mapfile -t COMPREPLY < <(compgen -W "error warn info debug" -- "$cur")
            return
            ;;
        --scope)
            mapfile -t COMPREPLY < <(compgen -W "read write admin" -- "$cur")
            return
            ;;
        --status)
            mapfile -t COMPREPLY < <(compgen -W "queued running succeeded failed cancelled timed_out" -- "$cur")
            return
            ;;
        --dst-skipped)
            mapfile -t COMPREPLY < <(compgen -W "shift skip" -- "$cur")
            return
            ;;
        --dst-repeated)
            mapfile -t COMPREPLY < <(compgen -W "first last both" -- "$cur")
            return
            ;;
        --workflow)
            mapfile -t COMPREPLY < <(compgen -W "$(_orch_workflow_names)" -- "$cur")
            return
            ;;
        --parent | --cursor)
            mapfile -t COMPREPLY < <(compgen -W "$(_orch_execution_ids)" -- "$cur")
            return
            ;;
        --*)
            # shellcheck disable=SC2086
            _orch_takes_value "$words" "$prev" && return
            ;;
    esac

    if [[ $cur == -* ]]; then
        # shellcheck disable=SC2086
        mapfile -t COMPREPLY < <(compgen -W "$(_orch_options $words)" -- "$cur")
        return
    fi

    n=$(_orch_npos "$words" "$start")
    case $words in
        init)
            if ((n == 0)); then
                compopt -o filenames 2>/dev/null
                mapfile -t COMPREPLY < <(compgen -d -- "$cur")
            fi
            ;;
        run | validate | "workflows apply")
            if ((n == 0)); then
                compopt -o filenames 2>/dev/null
                mapfile -t COMPREPLY < <(
                    compgen -f -X '!*.json' -- "$cur"
                    compgen -f -X '!*.yaml' -- "$cur"
                    compgen -f -X '!*.yml' -- "$cur"
                    compgen -d -- "$cur"
                )
            fi
            ;;
        trigger | "workflows show" | "workflows delete")
            ((n == 0)) && mapfile -t COMPREPLY < <(compgen -W "$(_orch_workflow_names)" -- "$cur")
            ;;
        "executions show" | logs | cancel | retry | resume)
            ((n == 0)) && mapfile -t COMPREPLY < <(compgen -W "$(_orch_execution_ids)" -- "$cur")
            ;;
    esac
    return 0
}
complete -F _orch orch
