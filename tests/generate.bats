#!/usr/bin/env bats
# Every command prints its own man page and completions (`--generate`), the
# same text `cargo xtask man` commits under man/, without any of the
# command's required flags.

load helpers

setup() {
  common_setup
}

@test "--generate man prints the committed man page of every command" {
  for cmd in etl-checkpoint etl-parse etl-transform etl-merge etl-push-sheets etl-fetch-mail etl-sheets-emulator; do
    run -0 --separate-stderr "$cmd" --generate man
    [ -n "$output" ]
    assert_equal "$output" "$(cat "$ETL_ROOT/man/man1/$cmd.1")"
  done
}

@test "--generate complete-bash|complete-zsh|complete-fish prints completions a shell loads" {
  for cmd in etl-checkpoint etl-parse etl-merge etl-fetch-mail; do
    run -0 --separate-stderr "$cmd" --generate complete-bash
    assert_output --regexp "complete -F _[a-z_]+ .* $cmd"
    echo "$output" > "$cmd.bash"
    run -0 bash -c "source ./$cmd.bash && complete -p $cmd"
    run -0 --separate-stderr "$cmd" --generate complete-zsh
    assert_output --partial "#compdef $cmd"
    run -0 --separate-stderr "$cmd" --generate complete-fish
    assert_output --partial "complete -c $cmd"
  done
  run -64 --separate-stderr etl-parse --generate pdf
  assert_equal "$output" ""
}
