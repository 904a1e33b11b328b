#!/usr/bin/env node
import { launch } from './launch.js';

await launch('dataplane/start.js');
