from smsguard.cli import main

raise SystemExit(main())
