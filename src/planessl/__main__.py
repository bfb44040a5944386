from planessl.cli import main

raise SystemExit(main())
