function __connectd_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __connectd_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __connectd_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __connectd_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __connectd_parse_tokens -S
    set -l unparsed_tokens (__connectd_tokens -pc)
    switch $unparsed_tokens[1]
    case 'connectd'
        __connectd_parse_subcommand 0 'h/help'
        switch $unparsed_tokens[1]
        case 'agent'
            __connectd_parse_subcommand 0 'dev' 'config-file=+' 'config-dir=+' 'data-dir=' 'datacenter=' 'node=' 'client=' 'bind=' 'http-port=' 'log-level=' 'log-json' 'h/help'
        case 'proxy'
            __connectd_parse_subcommand 0 'proxy-id=' 'token=' 'http-addr=' 'service=' 'upstream=+' 'listen=' 'service-addr=' 'log-level=' 'h/help'
        case 'validate'
            __connectd_parse_subcommand -r 1 'quiet' 'h/help'
        case 'reload'
            __connectd_parse_subcommand 0 'http-addr=' 'token=' 'h/help'
        case 'status'
            __connectd_parse_subcommand 0 'http-addr=' 'token=' 'json' 'h/help'
        case 'ca'
            __connectd_parse_subcommand 0 'h/help'
            switch $unparsed_tokens[1]
            case 'rotate'
                __connectd_parse_subcommand 0 'http-addr=' 'token=' 'private-key=' 'root-cert=' 'h/help'
            case 'get-config'
                __connectd_parse_subcommand 0 'http-addr=' 'token=' 'h/help'
            case 'reset'
                __connectd_parse_subcommand 0 'data-dir=' 'h/help'
            end
        case 'fleet'
            __connectd_parse_subcommand 0 'h/help'
            switch $unparsed_tokens[1]
            case 'status'
                __connectd_parse_subcommand 0 'http-addr=' 'token=' 'json' 'h/help'
            case 'remove-host'
                __connectd_parse_subcommand 1 'http-addr=' 'token=' 'h/help'
            end
        case 'version'
            __connectd_parse_subcommand 0 'h/help'
        case 'demo-http'
            __connectd_parse_subcommand 0 'name=' 'listen=' 'h/help'
        case 'help'
            __connectd_parse_subcommand -r 1 
        end
    end
end

function __connectd_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __connectd_parse_subcommand -S -a positional_count
    argparse -s r -- $argv
    set -l option_specs $argv[2..]
    set -l is_repeating_positional $_flag_r
    set -el _flag_r
    set -a commands $unparsed_tokens[1]
    set positional_index 0
    while true
        set -e unparsed_tokens[1]
        argparse -sn "$commands" $option_specs -- $unparsed_tokens 2> /dev/null
        set unparsed_tokens $argv
        set positional_index (math $positional_index + 1)
        for non_repeating_flag_or_option in $non_repeating_flags_or_options
            if set -ql "_flag_$(string replace -a - _ -- $non_repeating_flag_or_option)"
                set non_repeating_flags_or_options_absent 1
                break
            end
        end
        test (count $unparsed_tokens) -eq 0 -o \( -z "$is_repeating_positional" -a "$positional_index" -gt "$positional_count" \) && break
    end
end

function __connectd_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __connectd_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__connectd_tokens -p)
    if test -z "$(__connectd_tokens -t)"
        set -l index (count (__connectd_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'connectd' -f
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'connectd' -n '__connectd_should_offer_completions_for_positional "connectd" -eq 1' -fa 'agent' -d 'Run the agent (flags accept one or two dashes, as Consul\'s).'
complete -c 'connectd' -n '__connectd_should_offer_completions_for_positional "connectd" -eq 1' -fa 'proxy' -d 'Run the built-in mutual-TLS proxy (the default managed proxy command).'
complete -c 'connectd' -n '__connectd_should_offer_completions_for_positional "connectd" -eq 1' -fa 'validate' -d 'Check config files and directories; print every problem and exit 1 when there is one.'
complete -c 'connectd' -n '__connectd_should_offer_completions_for_positional "connectd" -eq 1' -fa 'reload' -d 'Ask the running agent to reload its configuration; waits until it is applied or refused.'
complete -c 'connectd' -n '__connectd_should_offer_completions_for_positional "connectd" -eq 1' -fa 'status' -d 'Show the managed proxies of a running agent (GET /v1/agent/proxies).'
complete -c 'connectd' -n '__connectd_should_offer_completions_for_positional "connectd" -eq 1' -fa 'ca' -d 'Inspect or rotate the built-in certificate authority of a running agent.'
complete -c 'connectd' -n '__connectd_should_offer_completions_for_positional "connectd" -eq 1' -fa 'fleet' -d 'Inspect the fleet a running agent belongs to (fleet mode).'
complete -c 'connectd' -n '__connectd_should_offer_completions_for_positional "connectd" -eq 1' -fa 'version' -d 'Print the version.'
complete -c 'connectd' -n '__connectd_should_offer_completions_for_positional "connectd" -eq 1' -fa 'demo-http' -d 'Serve "hello from <name>" over HTTP (a stand-in service for the demo and tests).'
complete -c 'connectd' -n '__connectd_should_offer_completions_for_positional "connectd" -eq 1' -fa 'help' -d 'Show subcommand help information.'
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd agent" dev dev' -o 'dev' -l 'dev' -d 'Development mode: temporary data_dir, debug logs, pretty JSON; everything removed on exit.'
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd agent"' -o 'config-file' -l 'config-file' -d 'A config file to load (repeatable).' -rfka ''
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd agent"' -o 'config-dir' -l 'config-dir' -d 'A directory whose *.json files load in lexical order (repeatable).' -rfka ''
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd agent" data-dir data-dir' -o 'data-dir' -l 'data-dir' -d 'Where durable state lives.' -rfka ''
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd agent" datacenter datacenter' -o 'datacenter' -l 'datacenter' -d 'Datacenter name (default dc1).' -rfka ''
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd agent" node node' -o 'node' -l 'node' -d 'Node name (default: the host name).' -rfka ''
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd agent" client client' -o 'client' -l 'client' -d 'Address the HTTP API listens on (default 127.0.0.1).' -rfka ''
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd agent" bind bind' -o 'bind' -l 'bind' -d 'Address managed proxies bind by default (default 0.0.0.0).' -rfka ''
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd agent" http-port http-port' -o 'http-port' -l 'http-port' -d 'HTTP API port (default 8500; 0 picks a free port).' -rfka ''
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd agent" log-level log-level' -o 'log-level' -l 'log-level' -d 'trace, debug, info, warn or err.' -rfka ''
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd agent" log-json log-json' -o 'log-json' -l 'log-json' -d 'Log JSON lines.'
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd agent" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd proxy" proxy-id proxy-id' -o 'proxy-id' -l 'proxy-id' -d 'The managed proxy\'s service ID.' -rfka ''
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd proxy" token token' -o 'token' -l 'token' -d 'ACL token.' -rfka ''
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd proxy" http-addr http-addr' -o 'http-addr' -l 'http-addr' -d 'Agent HTTP address (default: $CONSUL_HTTP_ADDR or 127.0.0.1:8500).' -rfka ''
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd proxy" service service' -o 'service' -l 'service' -d 'Unmanaged: the service this proxy acts for.' -rfka ''
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd proxy"' -o 'upstream' -l 'upstream' -d 'Unmanaged: NAME:PORT, a local listener on 127.0.0.1:PORT reaching NAME (repeatable).' -rfka ''
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd proxy" listen listen' -o 'listen' -l 'listen' -d 'Unmanaged: public mTLS listener address (host:port).' -rfka ''
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd proxy" service-addr service-addr' -o 'service-addr' -l 'service-addr' -d 'Unmanaged: the local service\'s address behind -listen (host:port).' -rfka ''
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd proxy" log-level log-level' -o 'log-level' -l 'log-level' -d 'trace, debug, info, warn or err.' -rfka ''
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd proxy" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd validate" quiet quiet' -o 'quiet' -l 'quiet' -d 'Print nothing on success.'
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd validate" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd reload" http-addr http-addr' -o 'http-addr' -l 'http-addr' -d 'Agent HTTP address (default: $CONSUL_HTTP_ADDR or 127.0.0.1:8500).' -rfka ''
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd reload" token token' -o 'token' -l 'token' -d 'ACL token (default: $CONSUL_HTTP_TOKEN).' -rfka ''
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd reload" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd status" http-addr http-addr' -o 'http-addr' -l 'http-addr' -d 'Agent HTTP address (default: $CONSUL_HTTP_ADDR or 127.0.0.1:8500).' -rfka ''
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd status" token token' -o 'token' -l 'token' -d 'ACL token (default: $CONSUL_HTTP_TOKEN).' -rfka ''
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd status" json json' -o 'json' -l 'json' -d 'Print the raw JSON.'
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd status" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd ca" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'connectd' -n '__connectd_should_offer_completions_for_positional "connectd ca" -eq 1' -fa 'rotate' -d 'Rotate the CA root: a new key (generated, or read from -private-key), cross-signed by the old root.'
complete -c 'connectd' -n '__connectd_should_offer_completions_for_positional "connectd ca" -eq 1' -fa 'get-config' -d 'Print the CA configuration (never a key).'
complete -c 'connectd' -n '__connectd_should_offer_completions_for_positional "connectd ca" -eq 1' -fa 'reset' -d 'Remove a stopped agent\'s certificate authority so its next start creates a new trust domain.'
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd ca rotate" http-addr http-addr' -o 'http-addr' -l 'http-addr' -d 'Agent HTTP address (default: $CONSUL_HTTP_ADDR or 127.0.0.1:8500).' -rfka ''
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd ca rotate" token token' -o 'token' -l 'token' -d 'ACL token (default: $CONSUL_HTTP_TOKEN).' -rfka ''
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd ca rotate" private-key private-key' -o 'private-key' -l 'private-key' -d 'A PEM file with the new root\'s P-256 key (default: generate one).' -rfka ''
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd ca rotate" root-cert root-cert' -o 'root-cert' -l 'root-cert' -d 'A PEM file with the new root certificate for -private-key (default: made from the key).' -rfka ''
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd ca rotate" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd ca get-config" http-addr http-addr' -o 'http-addr' -l 'http-addr' -d 'Agent HTTP address (default: $CONSUL_HTTP_ADDR or 127.0.0.1:8500).' -rfka ''
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd ca get-config" token token' -o 'token' -l 'token' -d 'ACL token (default: $CONSUL_HTTP_TOKEN).' -rfka ''
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd ca get-config" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd ca reset" data-dir data-dir' -o 'data-dir' -l 'data-dir' -d 'The agent\'s data_dir.' -rfka ''
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd ca reset" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd fleet" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'connectd' -n '__connectd_should_offer_completions_for_positional "connectd fleet" -eq 1' -fa 'status' -d 'Hosts, etcd members and this agent\'s view of the fleet (GET /v1/agent/fleet).'
complete -c 'connectd' -n '__connectd_should_offer_completions_for_positional "connectd fleet" -eq 1' -fa 'remove-host' -d 'Retire a host from the fleet: its catalog entries go now, its intermediate is not renewed, its CSR is refused.'
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd fleet status" http-addr http-addr' -o 'http-addr' -l 'http-addr' -d 'Agent HTTP address (default: $CONSUL_HTTP_ADDR or 127.0.0.1:8500).' -rfka ''
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd fleet status" token token' -o 'token' -l 'token' -d 'ACL token (default: $CONSUL_HTTP_TOKEN).' -rfka ''
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd fleet status" json json' -o 'json' -l 'json' -d 'Print the raw JSON.'
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd fleet status" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd fleet remove-host" http-addr http-addr' -o 'http-addr' -l 'http-addr' -d 'Agent HTTP address (default: $CONSUL_HTTP_ADDR or 127.0.0.1:8500).' -rfka ''
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd fleet remove-host" token token' -o 'token' -l 'token' -d 'ACL token (default: $CONSUL_HTTP_TOKEN).' -rfka ''
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd fleet remove-host" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd version" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd demo-http" name name' -o 'name' -l 'name' -d 'The name in the answer.' -rfka ''
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd demo-http" listen listen' -o 'listen' -l 'listen' -d 'host:port to serve on.' -rfka ''
complete -c 'connectd' -n '__connectd_should_offer_completions_for_flags_or_options "connectd demo-http" h help' -s 'h' -l 'help' -d 'Show help information.'
