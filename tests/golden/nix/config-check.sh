if ! openclaw config check --no-state --config /nix/store/k1ihs1aizdjz95i1yyzrpkclvnmm2wgj-openclaw.json; then
  echo "openclaw: services.openclaw.settings is not a valid /etc/openclaw/openclaw.json (see above)" >&2
  exit 1
fi
ln -s /nix/store/k1ihs1aizdjz95i1yyzrpkclvnmm2wgj-openclaw.json $out
