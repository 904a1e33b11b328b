#!/usr/bin/env node
import { launch } from './launch.js';

await launch('bench/main.js');
