"""Lightning callbacks: gradient norms, interrupt bookkeeping."""
