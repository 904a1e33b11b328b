#!/usr/bin/env node
import { launch } from './launch.js';

await launch('cert/main.js');
