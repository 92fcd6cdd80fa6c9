#!/usr/bin/env node
import '../dist/cni/main.js';
