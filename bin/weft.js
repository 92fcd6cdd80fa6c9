#!/usr/bin/env node
// The `weft` CNI plugin: runs the one-file bundle built by `npm run build:cni` (scripts/build-cni.mjs).
import '../dist/cni/weft.cjs';
