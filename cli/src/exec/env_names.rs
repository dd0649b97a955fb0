//! Variable names a `--secret` may not set: whoever can write a secret must not be able to run
//! code in the pipeline by adding a key. Rather than a list of known-bad names (every tool
//! keeps adding new ones: `GIT_CONFIG_COUNT`, `PYTHONWARNINGS`, `DOTNET_STARTUP_HOOKS`…), whole
//! families are refused: every name a loader, shell, interpreter, build tool or VCS reads to
//! decide what to load or run, and the names that send a tool's traffic through a proxy or
//! swap its trust roots (a man in the middle sees every token the job sends). Such a list can
//! never be complete; it narrows what a secret's author can do by accident of naming. A key with such a name must be mapped explicitly with
//! `--env-file NAME=secret/path#key`, which is the deliberate opt-in.

/// How a rule matches a name.
#[derive(Clone, Copy)]
enum Shape {
    /// The name starts with this.
    Prefix(&'static str),
    /// The name is this.
    Exact(&'static str),
}

/// One family of names.
struct Rule {
    shape: Shape,
    /// Whether the program reading it ignores case (npm reads `npm_config_*` too).
    any_case: bool,
    /// What reads it, for the error message.
    why: &'static str,
}

const fn prefix(text: &'static str, why: &'static str) -> Rule {
    Rule {
        shape: Shape::Prefix(text),
        any_case: false,
        why,
    }
}

const fn prefix_any_case(text: &'static str, why: &'static str) -> Rule {
    Rule {
        shape: Shape::Prefix(text),
        any_case: true,
        why,
    }
}

const fn exact(text: &'static str, why: &'static str) -> Rule {
    Rule {
        shape: Shape::Exact(text),
        any_case: false,
        why,
    }
}

const fn exact_any_case(text: &'static str, why: &'static str) -> Rule {
    Rule {
        shape: Shape::Exact(text),
        any_case: true,
        why,
    }
}

const SHELL: &str = "shells read it at start-up or run it";
const TOOL: &str = "programs run the command or file it names";
const BUILD: &str = "build tools run the compiler or wrapper it names";
const LIBC: &str = "the C library loads code from it";
const PROXY: &str = "curl, git, pip and most HTTP clients send every request through it";
const TRUST: &str = "TLS clients trust the certificate authorities it names";

/// The families. Prefixes cover every present and future variable of a tool.
const RULES: &[Rule] = &[
    prefix(
        "LD_",
        "the dynamic loader (LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT)",
    ),
    prefix("DYLD_", "the macOS dynamic loader"),
    prefix(
        "GIT_",
        "git (GIT_CONFIG_*, GIT_SSH_COMMAND, GIT_EXTERNAL_DIFF run commands)",
    ),
    prefix(
        "PYTHON",
        "Python (PYTHONPATH, PYTHONSTARTUP, PYTHONWARNINGS import code)",
    ),
    prefix("NODE_", "Node.js (NODE_OPTIONS --require)"),
    prefix_any_case(
        "NPM_CONFIG_",
        "npm configuration (script-shell, node-options)",
    ),
    prefix("YARN_", "Yarn configuration (yarnPath runs a file)"),
    prefix("PERL", "Perl (PERL5OPT, PERL5LIB, PERL5DB)"),
    prefix("RUBY", "Ruby (RUBYOPT, RUBYLIB)"),
    prefix("GEM_", "RubyGems load paths"),
    prefix(
        "BUNDLE_",
        "Bundler configuration (BUNDLE_GEMFILE runs Ruby)",
    ),
    prefix("JAVA", "the JVM (JAVA_TOOL_OPTIONS -javaagent)"),
    prefix("_JAVA", "the JVM (_JAVA_OPTIONS)"),
    prefix("JDK_", "the java launcher (JDK_JAVA_OPTIONS)"),
    prefix("MAVEN_", "Maven (MAVEN_OPTS: JVM options)"),
    prefix("GRADLE_", "Gradle (GRADLE_OPTS: JVM options)"),
    prefix("DOTNET_", ".NET (DOTNET_STARTUP_HOOKS loads an assembly)"),
    prefix_any_case("COMPLUS_", ".NET runtime configuration"),
    prefix("CORECLR_", ".NET (CORECLR_PROFILER_PATH loads a library)"),
    prefix("BASH_", "bash (BASH_ENV is sourced)"),
    prefix("PHP", "PHP (PHPRC, PHP_INI_SCAN_DIR: auto_prepend_file)"),
    prefix("LUA_", "Lua (LUA_INIT runs code)"),
    prefix(
        "PIP_",
        "pip configuration (index URL: packages run setup code)",
    ),
    prefix("UV_", "uv configuration (index URL)"),
    prefix("CARGO_", "Cargo configuration (runners, rustc wrappers)"),
    prefix("RUSTC", BUILD),
    prefix("RUSTUP_", "rustup (toolchain and download server)"),
    prefix("CGO_", BUILD),
    prefix("XDG_", "the config directories of git, npm and others"),
    prefix("LESS", "less (LESSOPEN runs a command)"),
    prefix("OPENSSL_", "OpenSSL (OPENSSL_CONF loads engines)"),
    prefix("GCONV_", LIBC),
    prefix(
        "TF_CLI_ARGS",
        "Terraform (TF_CLI_ARGS, TF_CLI_ARGS_plan add flags such as -var-file)",
    ),
    prefix(
        "ERL_",
        "the Erlang VM (ERL_AFLAGS, ERL_FLAGS, ERL_ZFLAGS: -eval)",
    ),
    prefix(
        "ANSIBLE_",
        "Ansible configuration (plugins, ssh arguments, vault password scripts)",
    ),
    prefix("VAULTCTL_", "vaultctl itself"),
    prefix("ACTIONS_", "the GitHub Actions runner"),
    exact("PATH", "every command lookup"),
    exact(
        "HOME",
        "every tool's dotfiles (.gitconfig, .npmrc, .bashrc)",
    ),
    exact("IFS", SHELL),
    exact("ENV", SHELL),
    exact("SHELL", TOOL),
    exact("SHELLOPTS", SHELL),
    exact("BASHOPTS", SHELL),
    exact("ZDOTDIR", SHELL),
    exact("PROMPT_COMMAND", SHELL),
    exact("PS1", SHELL),
    exact("PS2", SHELL),
    exact("PS3", SHELL),
    exact("PS4", SHELL),
    exact("CDPATH", SHELL),
    exact("PAGER", TOOL),
    exact("MANPAGER", TOOL),
    exact("EDITOR", TOOL),
    exact("VISUAL", TOOL),
    exact("BROWSER", TOOL),
    exact("SSH_ASKPASS", TOOL),
    exact("SUDO_ASKPASS", TOOL),
    exact("LOCPATH", LIBC),
    exact("NLSPATH", LIBC),
    exact("GLIBC_TUNABLES", LIBC),
    exact("HOSTALIASES", LIBC),
    exact("CC", BUILD),
    exact("CXX", BUILD),
    exact("CPP", BUILD),
    exact("AR", BUILD),
    exact("MAKEFLAGS", BUILD),
    exact("MFLAGS", BUILD),
    exact("RUSTFLAGS", BUILD),
    exact("RUSTDOCFLAGS", BUILD),
    exact("CFLAGS", BUILD),
    exact("CXXFLAGS", BUILD),
    exact("CPPFLAGS", BUILD),
    exact("LDFLAGS", BUILD),
    exact("LD", BUILD),
    exact("CLASSPATH", "the JVM (classes it loads)"),
    exact(
        "TF_CLI_CONFIG_FILE",
        "Terraform (provider installation and credentials helpers)",
    ),
    exact("PSQLRC", "psql (the file it runs at start-up)"),
    exact("RSYNC_RSH", "rsync (the remote shell command)"),
    exact("HGRCPATH", "Mercurial (hooks in its configuration files)"),
    exact("VIMINIT", "vim (Ex commands run at start-up)"),
    exact("EXINIT", "vi and ex (commands run at start-up)"),
    exact("KUBE_EDITOR", "kubectl edit (the editor command)"),
    exact("KUBECTL_EXTERNAL_DIFF", "kubectl diff (the diff command)"),
    exact("WGETRC", "wget (its configuration file)"),
    exact("CURL_HOME", "curl (the directory of its .curlrc)"),
    exact_any_case("HTTP_PROXY", PROXY),
    exact_any_case("HTTPS_PROXY", PROXY),
    exact_any_case("ALL_PROXY", PROXY),
    exact("SSL_CERT_FILE", TRUST),
    exact("SSL_CERT_DIR", TRUST),
    exact("REQUESTS_CA_BUNDLE", TRUST),
    exact("CURL_CA_BUNDLE", TRUST),
    exact("GOFLAGS", "the go command (-toolexec)"),
    exact(
        "GOTOOLCHAIN",
        "the go command (downloads and runs a toolchain)",
    ),
    exact("GOPROXY", "the go command (module source)"),
    exact("GOENV", "the go command (its configuration file)"),
    exact("ANT_OPTS", "Ant (JVM options)"),
    exact("SBT_OPTS", "sbt (JVM options)"),
    exact("KUBECONFIG", "kubectl (exec credential plugins)"),
    exact("DOCKER_CONFIG", "docker (credential helpers)"),
    exact(
        "AWS_CONFIG_FILE",
        "the AWS CLI and SDKs (credential_process)",
    ),
    exact("GITHUB_ENV", "the GitHub Actions runner"),
    exact("GITHUB_PATH", "the GitHub Actions runner"),
    exact("GITHUB_OUTPUT", "the GitHub Actions runner"),
    exact("VAULT_TOKEN", "vaultctl's credential"),
    exact("VAULT_ADDR", "vaultctl's broker address"),
];

/// Why a `--secret` key may not set variable `name`, or `None` if it may.
pub fn refused(name: &str) -> Option<&'static str> {
    RULES
        .iter()
        .find(|rule| {
            let (text, whole) = match rule.shape {
                Shape::Prefix(text) => (text, false),
                Shape::Exact(text) => (text, true),
            };
            let head = match name.get(..text.len()) {
                Some(head) if !whole || head.len() == name.len() => head,
                _ => return false,
            };
            if rule.any_case {
                head.eq_ignore_ascii_case(text)
            } else {
                head == text
            }
        })
        .map(|rule| rule.why)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One name per family, and its lowercase form where the program ignores case.
    #[test]
    fn every_family_is_refused() {
        for rule in RULES {
            let name = match rule.shape {
                Shape::Prefix(text) => format!("{text}ANYTHING"),
                Shape::Exact(text) => text.to_owned(),
            };
            assert_eq!(refused(&name), Some(rule.why), "{name}");
            if rule.any_case {
                assert!(refused(&name.to_lowercase()).is_some(), "{name}");
            }
        }
    }

    #[test]
    fn the_names_from_the_issue_are_refused() {
        for name in [
            "GIT_CONFIG_COUNT",
            "GIT_CONFIG_KEY_0",
            "GIT_CONFIG_VALUE_0",
            "GIT_SSH_COMMAND",
            "GIT_EXTERNAL_DIFF",
            "PAGER",
            "EDITOR",
            "JDK_JAVA_OPTIONS",
            "_JAVA_OPTIONS",
            "JAVA_TOOL_OPTIONS",
            "DOTNET_STARTUP_HOOKS",
            "COMPlus_EnableDiagnostics",
            "GCONV_PATH",
            "PYTHONWARNINGS",
            "ZDOTDIR",
            "PROMPT_COMMAND",
            "PS4",
            "LD_PRELOAD",
            "BASH_ENV",
            "NODE_OPTIONS",
            "npm_config_script_shell",
            "NPM_CONFIG_NODE_OPTIONS",
            "PERL5OPT",
            "RUBYOPT",
        ] {
            assert!(refused(name).is_some(), "{name}");
        }
    }

    /// One or more names per family added after the second review, in the case the program
    /// reads them.
    #[test]
    fn names_that_run_code_redirect_traffic_or_swap_trust_roots_are_refused() {
        for name in [
            "CLASSPATH",
            "TF_CLI_CONFIG_FILE",
            "TF_CLI_ARGS",
            "TF_CLI_ARGS_plan",
            "TF_CLI_ARGS_apply",
            "CFLAGS",
            "CXXFLAGS",
            "CPPFLAGS",
            "LDFLAGS",
            "LD",
            "ERL_AFLAGS",
            "ERL_FLAGS",
            "ERL_ZFLAGS",
            "PSQLRC",
            "RSYNC_RSH",
            "HGRCPATH",
            "VIMINIT",
            "EXINIT",
            "KUBE_EDITOR",
            "KUBECTL_EXTERNAL_DIFF",
            "ANSIBLE_CONFIG",
            "ANSIBLE_SSH_ARGS",
            "WGETRC",
            "CURL_HOME",
            "HTTP_PROXY",
            "http_proxy",
            "HTTPS_PROXY",
            "https_proxy",
            "ALL_PROXY",
            "all_proxy",
            "SSL_CERT_FILE",
            "SSL_CERT_DIR",
            "REQUESTS_CA_BUNDLE",
            "CURL_CA_BUNDLE",
        ] {
            assert!(refused(name).is_some(), "{name}");
        }
    }

    #[test]
    fn ordinary_secret_names_are_allowed() {
        for name in [
            "DB_PASSWORD",
            "API_KEY",
            "SSH_PRIVATE_KEY",
            "GOOGLE_CREDENTIALS",
            "TF_VAR_db_password",
            "AWS_SECRET_ACCESS_KEY",
            "NPM_TOKEN",
            "CCACHE_DIR",
            "PATHNAME",
            "HOMEPAGE_URL",
            "git_ssh_command",
            "ps4",
            "LDAP_PASSWORD",
            "ERLANG_COOKIE",
            "HTTP_PROXY_PASSWORD",
            "TF_TOKEN_app_terraform_io",
        ] {
            assert_eq!(refused(name), None, "{name}");
        }
    }
}
