/** The one progress line on stderr: rewritten in place on a terminal, one line per step otherwise. */
export class Progress {
  private readonly started = Date.now();
  private readonly tty = process.stderr.isTTY === true;

  constructor(private readonly enabled = true) {}

  step(text: string): void {
    if (!this.enabled) return;
    const line = `[bench ${((Date.now() - this.started) / 1000).toFixed(0).padStart(3)}s] ${text}`;
    if (this.tty) process.stderr.write(`\r\x1b[2K${line}`);
    else process.stderr.write(`${line}\n`);
  }

  done(): void {
    if (this.enabled && this.tty) process.stderr.write('\r\x1b[2K');
  }
}
