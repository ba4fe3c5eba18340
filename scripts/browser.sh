#!/usr/bin/env bash
# Headless Chromium for the viewer's browser test (tests/test_view_browser.py): Debian's chromium and
# chromium-driver, installed with apt-get when missing and when this shell may (root, apt-get present).
# Quiet, quick when already installed, and never fails the run: without a browser the test says why it skipped
# (and fails instead where AVUIE_REQUIRE_BROWSER=1, as .ci/run sets).
set -u
have() { command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; }
have && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "browser.sh: chromium/chromedriver missing and apt-get is not usable here (root needed)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
install() { apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null 2>&1; }
install || { apt-get update -qq >/dev/null 2>&1; install; } ||
  echo "browser.sh: apt-get could not install chromium chromium-driver" >&2
have && echo "browser.sh: installed $(chromium --version 2>/dev/null)" >&2
exit 0
